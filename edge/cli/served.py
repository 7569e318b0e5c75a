"""`--server URL` for `gedge inspect` and `gedge bench`: the model becomes a reference to a served model, and the
requests sent to it are reported at the end (a failed request makes the command fail)."""

from __future__ import annotations

from pathlib import Path

from gedge.cli.render import err_console, key_value_table, print_json
from gedge.core.errors import ConfigError, RuntimeFailure
from gedge.runtime.served import LEDGER, listen, served_reference


def served_model(server: str, model_name: str | None, first: Path | None, rest: list[Path] | None) -> tuple[str,
                                                                                                             list]:
    """(the served model's reference, the inputs): with --server, the first positional argument is an input."""
    inputs = [*([first] if first is not None else []), *(rest or [])]
    listen(lambda line: err_console.print(f"note: {line}", markup=False, soft_wrap=True))  # e.g. a model loading
    return served_reference(server, model_name), inputs


def need_inputs(inputs: list | None, what: str) -> list:
    if not inputs:
        raise ConfigError(f"give {what}")
    return inputs


def report_requests(reference: str, json_out: bool) -> None:
    """Print the requests sent to the served model; RuntimeFailure (exit 3) when any failed."""
    counts = LEDGER.get(reference)
    if counts is None:
        return
    summary = counts.to_dict()
    if json_out:
        print_json({"served": {"model": reference, **summary}})
    else:
        err_console.print(key_value_table("Requests to the server", {
            "model": reference, "requests": summary["requests"], "failed": summary["failed_requests"],
            "retried (connection errors)": summary["retries"]}))
    if summary["failed_requests"]:
        raise RuntimeFailure(f"{summary['failed_requests']} of {summary['requests']} requests failed; first: "
                             f"{summary['first_errors'][0]}")
