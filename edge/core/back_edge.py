from gedge.runtime import registry  # noqa: F401
