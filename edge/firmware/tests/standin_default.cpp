// The link seam: in test builds gedge::default_platform() (what gedge_open uses) is a stand-in.
#include "standin_platform.hpp"

namespace standin {
Platform& shared() {
    static Platform platform;
    return platform;
}
}  // namespace standin

gedge::Platform& gedge::default_platform() { return standin::shared(); }
