"""`gedge train` as a library call: open the data set, survey its images, choose the input settings, train, and
write the checkpoint and its training curve.

:func:`prepare_training` does everything that can fail on bad input (the folder, the images' headers, the options)
before any progress is shown, and decides the settings the user left open (:mod:`gedge.reference.inputs`);
:meth:`TrainingJob.run` trains (:func:`gedge.reference.train.train`) and writes ``<out>`` atomically, then
``<out>.curve.json`` and ``<out>.curve.png`` (:mod:`gedge.reference.curves`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gedge.data.datasets import Dataset, open_dataset
from gedge.data.survey import ImageSurvey, survey_images
from gedge.reference.checkpoint import save_checkpoint
from gedge.reference.curves import write_training_curve
from gedge.reference.inputs import InputChoice, InputRequest, choose_inputs
from gedge.reference.model import ModelConfig, local_window
from gedge.reference.train import TrainCallbacks, TrainConfig, TrainResult, train


@dataclass(frozen=True)
class NetworkWidths:
    """The networks' sizes besides the input: latent size, generator and discriminator widths, extra layers."""

    nz: int = 100
    ngf: int = 32
    ndf: int = 32
    extralayers: int = 0


@dataclass(frozen=True)
class TrainRequest:
    data: Path
    out: Path
    config: TrainConfig = TrainConfig()
    inputs: InputRequest = InputRequest()
    widths: NetworkWidths = NetworkWidths()


@dataclass
class TrainingJob:
    """A training request with its data set opened and its input settings chosen."""

    request: TrainRequest
    dataset: Dataset
    survey: ImageSurvey
    choice: InputChoice
    model: ModelConfig

    def run(self, callbacks: TrainCallbacks | None = None) -> TrainResult:
        """Train on the data set's normal images; write the best checkpoint and its training curve."""
        r = self.request
        result = train(self.dataset, self.model, self.choice.preprocess, r.config, r.out, callbacks)
        result.checkpoint.facts.update(input_choice=self.choice.to_dict(), image_survey=self.survey.to_dict())
        save_checkpoint(result.checkpoint, r.out)
        write_training_curve(r.out, [asdict(h) for h in result.history], result.best_step, result.notes)
        return result


def prepare_training(request: TrainRequest) -> TrainingJob:
    dataset = open_dataset(request.data)
    survey = survey_images(dataset.train)
    choice = choose_inputs(survey, request.inputs)
    pre, w = choice.preprocess, request.widths
    model = ModelConfig(isize=pre.isize, nc=pre.channels, nz=w.nz, ngf=w.ngf, ndf=w.ndf, extralayers=w.extralayers,
                        residual_blur=local_window(pre.isize))
    return TrainingJob(request, dataset, survey, choice, model)


def train_summary(job: TrainingJob, result: TrainResult) -> dict[str, Any]:
    rule = result.checkpoint.decision
    return {"checkpoint": str(job.request.out), "best_step": result.best_step, "primary": rule.primary,
            "threshold": rule.threshold, "threshold_rule": rule.threshold_rule, "seconds": round(result.seconds, 1),
            "stop_reason": result.stop_reason, "notes": result.notes, "input_choice": job.choice.to_dict(),
            "proxy_auroc": result.checkpoint.facts["proxy_auroc"], "history": [asdict(h) for h in result.history]}
