import numpy as np
import pytest
import torch
from gedge.core.errors import ArtifactError, ConfigError
from gedge.core.preprocess import Preprocess
from gedge.core.scores import CANDIDATE_SCORES, OUTPUT_NAMES
from gedge.data.datasets import open_dataset
from gedge.reference.checkpoint import load_checkpoint, save_checkpoint
from gedge.reference.evaluate import EvaluationOptions, evaluate_backend
from gedge.reference.model import ModelConfig
from gedge.reference.train import TrainConfig, train
from gedge.runtime.torch_backend import TorchBackend
from helpers import make_mvtec

TINY = ModelConfig(isize=16, nz=16, ngf=8, ndf=8)
TINY_PRE = Preprocess(mode="patch", isize=16, stride=16)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = make_mvtec(tmp_path_factory.mktemp("data"), n_train=10, size=32)
    out = root.parent / "model.pt"
    result = train(open_dataset(root), TINY, TINY_PRE, TrainConfig(steps=12, val_every=6, batch_size=8), out)
    save_checkpoint(result.checkpoint, out)
    return root, out, result


def test_training_keeps_best_and_records_facts(trained, tmp_path):
    root, out, result = trained
    facts = result.checkpoint.facts
    assert [h.step for h in result.history] == [6, 12]
    # The best step by model selection's rule, worked out for two validations: the second (step 12) counts as
    # settled when G's reconstruction error fell by less than 15 % per 150 steps since the first, 0.6 % over these
    # 6 steps; a settled one is kept (its error is then within 1.5x of the lowest); otherwise the first of the
    # highest selection AUROC of both (a later tie does not replace it).
    first, second = result.history
    fall = (first.recon_l1 - second.recon_l1) / first.recon_l1
    if fall < 0.15 * 6 / 150 and second.recon_l1 <= 1.5 * min(first.recon_l1, second.recon_l1):
        best = second
    else:
        best = first if first.selection_auroc >= second.selection_auroc else second
    assert result.best_step == best.step == facts["best_step"]
    assert result.checkpoint.decision.primary == best.best_score == "d3_local"  # the default primary score
    assert all(h.best_score == "d3_local" for h in result.history)
    # ...and the checkpoint holds the networks of that step: a run stopped there ends with the same weights.
    stopped = train(open_dataset(root), TINY, TINY_PRE, TrainConfig(steps=best.step, val_every=6, batch_size=8),
                    tmp_path / "stopped.pt")
    for key, value in stopped.checkpoint.netg_state.items():
        assert torch.allclose(value.float(), result.checkpoint.netg_state[key].float(), atol=1e-6), key
    assert facts["n_validation_images"] == 2 and facts["n_train_images"] == 8
    assert result.checkpoint.decision.primary in CANDIDATE_SCORES
    assert (out.parent / "model.pt.state").is_file()


def test_checkpoint_round_trip_gives_identical_scores(trained):
    root, out, result = trained
    loaded = load_checkpoint(out)
    assert loaded.model == TINY and loaded.preprocess == TINY_PRE
    assert loaded.decision == result.checkpoint.decision
    batch = np.random.default_rng(0).integers(0, 255, (3, 16, 16, 3), dtype=np.uint8)
    a = TorchBackend(result.checkpoint).score(batch)
    b = TorchBackend(loaded).score(batch)
    for name in ("d1", "d2", "d3", "latent", "score"):
        assert np.array_equal(a.named(name), b.named(name))


def test_normalised_score_is_the_standardised_primary(trained):
    _, out, _ = trained
    ck = load_checkpoint(out)
    batch = np.random.default_rng(1).integers(0, 255, (4, 16, 16, 3), dtype=np.uint8)
    s = TorchBackend(ck).score(batch)
    expected = (s.named(ck.decision.primary) - ck.decision.mean) / ck.decision.std
    np.testing.assert_allclose(s.score, expected, rtol=1e-5, atol=1e-5)


def test_evaluation_report_rows(trained):
    root, out, _ = trained
    ck = load_checkpoint(out)
    test = open_dataset(root).test
    report, scores = evaluate_backend(TorchBackend(ck), test, ck.preprocess, ck.decision, "tiny")
    assert [r.name for r in report.rows] == ["all", "knot"]
    assert [(r.n_normal, r.n_anomalous) for r in report.rows] == [(6, 6), (6, 6)]
    # Each AUROC is the one of the returned scores, counted pair by pair here (ties count half)...
    for name in OUTPUT_NAMES:
        values = scores.named(name)
        pos, neg = values[test.labels == 1], values[test.labels == 0]
        pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
        assert report.rows[0].auroc[name] == pytest.approx(pairs, abs=1e-12) == report.rows[1].auroc[name], name
    # ...and the trained model finds the tiny set's dark squares far better than chance.
    assert report.rows[0].auroc[ck.decision.primary] >= 0.9 and report.rows[0].auroc["score"] >= 0.9
    assert report.primary == ck.decision.primary and report.threshold == ck.decision.threshold
    dropped = str(open_dataset(root).test.paths[-1])
    fewer, fewer_scores = evaluate_backend(TorchBackend(ck), open_dataset(root).test, ck.preprocess, ck.decision,
                                           "tiny", EvaluationOptions(batch_size=5, exclude=(dropped,)))
    assert fewer.excluded == [dropped] and fewer.n_images == 11
    np.testing.assert_allclose(fewer_scores.score, scores.score[:-1], rtol=1e-5, atol=1e-6)


def test_resume_continues_to_the_same_result(trained, tmp_path):
    root, _, _ = trained
    ds = open_dataset(root)
    full = train(ds, TINY, TINY_PRE, TrainConfig(steps=12, val_every=6, batch_size=8), tmp_path / "a.pt")
    train(ds, TINY, TINY_PRE, TrainConfig(steps=6, val_every=6, batch_size=8), tmp_path / "b.pt")
    resumed = train(ds, TINY, TINY_PRE, TrainConfig(steps=12, val_every=6, batch_size=8, resume=True),
                    tmp_path / "b.pt")
    for key, value in full.checkpoint.netg_state.items():
        assert torch.allclose(value.float(), resumed.checkpoint.netg_state[key].float(), atol=1e-6), key


def test_contamination_mixes_in_and_records_abnormal_images(tmp_path):
    root = make_mvtec(tmp_path / "d", n_train=20, n_bad=6, size=32)
    result = train(open_dataset(root), TINY, TINY_PRE,
                   TrainConfig(steps=2, val_every=2, batch_size=4, contamination=0.2), tmp_path / "c.pt")
    used = result.checkpoint.facts["contaminated_with"]
    assert len(used) == 3 and all("/test/knot/" in p for p in used)


def test_truncated_and_foreign_checkpoints_are_refused(trained, tmp_path):
    _, out, _ = trained
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    with pytest.raises(ArtifactError, match="truncated"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(ArtifactError, match="not a gedge checkpoint"):
        load_checkpoint(foreign)
    payload = torch.load(out, weights_only=True)
    payload["format_version"] = 99
    newer = tmp_path / "newer.pt"
    torch.save(payload, newer)
    with pytest.raises(ArtifactError, match="version 99"):
        load_checkpoint(newer)


def test_the_primary_score_is_the_one_asked_for_or_chosen_on_the_proxies(tmp_path):
    """``primary`` fixes the score whatever the proxies say; ``auto`` lets every validation choose it."""
    root = make_mvtec(tmp_path / "data", n_train=10, size=32)
    fixed = train(open_dataset(root), TINY, TINY_PRE, TrainConfig(steps=6, val_every=3, batch_size=8, primary="d1"),
                  tmp_path / "d1.pt")
    assert fixed.checkpoint.decision.primary == "d1" and [h.best_score for h in fixed.history] == ["d1", "d1"]
    auto = train(open_dataset(root), TINY, TINY_PRE, TrainConfig(steps=6, val_every=3, batch_size=8, primary="auto"),
                 tmp_path / "auto.pt")
    for h in auto.history:  # each validation's choice is choose_score's on its proxy AUROCs
        top = max(h.proxy_auroc.values())
        assert h.best_score == "d3_local" or h.proxy_auroc[h.best_score] == top
    with pytest.raises(ConfigError, match="primary must be auto or one of"):
        TrainConfig(primary="d4")
