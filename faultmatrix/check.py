"""The invariants every scenario must meet, as pure functions over what the emulator holds and what a run wrote.

- nothing lost: every record the emulator holds for a partition the manifest calls `ok` is in its blob;
- nothing duplicated: no (stream, parent, id) twice anywhere in the run's output, orphan blobs included;
- every partition accounted for, exactly once, with the right status (a parent without a mailbox or drive is
  `skipped`; `failed` only where the scenario makes failure the right answer);
- `_SUCCESS` exactly when no partition failed, and never beside a loss;
- no secret or token value anywhere (the scanner's leaks are passed in).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from faultmatrix.scan import Leak

PartitionKey = tuple[str, str | None]
Outcome = Literal["succeeded", "failed", "refused"]


@dataclass(frozen=True, slots=True)
class Row:
    """One written record, reduced to what identity needs."""

    stream: str
    parent: str | None  # the injected parent key's value (None for unpartitioned streams)
    record_id: str
    blob: str


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a correct product does under the scenario's fault."""

    outcome: Outcome = "succeeded"
    failed_streams: frozenset[str] = frozenset()  # streams where failed partitions are the right answer
    must_fail: bool = False  # those streams must really fail (a refused link, a missing permission)
    failure_codes: frozenset[str] = frozenset()  # if set, every failure must carry one of these codes
    message_must_name: Mapping[str, str] = field(default_factory=dict)  # stream -> text its failure must contain
    min_reruns: int = 0  # partitions the orchestration must have re-run (evidence of a re-run pass)
    min_retries: int = 0  # Graph request retries the manifest must report (evidence of engine-level retries)


@dataclass(slots=True)
class Observed:
    """What one run produced: the manifest's partitions, whether `_SUCCESS` exists, every data row written."""

    outcome: Outcome
    partitions: list[dict[str, Any]]
    success_marker: bool
    rows: list[Row]
    data_blobs: list[str]  # every data blob under the run's folders (to find orphans)


@dataclass(slots=True)
class Verdict:
    expected: int = 0
    written: int = 0
    lost: int = 0
    duplicated: int = 0
    unsynced: int = 0  # records in partitions reported failed (accounted for: a re-run copies them)
    partitions_expected: int = 0
    partitions_accounted: int = 0
    ok: int = 0
    skipped: int = 0
    failed: int = 0
    leaks: int = 0
    reruns: int = 0
    retries: int = 0
    success_marker: bool = False
    outcome: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def _note(verdict: Verdict, problem: str, limit: int = 12) -> None:
    if len(verdict.problems) < limit:
        verdict.problems.append(problem)
    elif len(verdict.problems) == limit:
        verdict.problems.append("... more problems not shown")


def evaluate(expected: Mapping[PartitionKey, frozenset[str] | None], observed: Observed, expectation: Expectation,
             leaks: Iterable[Leak] = (), fan_out: Mapping[str, bool] | None = None) -> Verdict:
    """`expected[(stream, parent)]` is the set of record ids the emulator holds, or None when the parent itself
    answers 403/404 (no mailbox, no OneDrive): such a partition must be skipped, not failed and not empty-ok."""
    verdict = Verdict(partitions_expected=len(expected), success_marker=observed.success_marker,
                      outcome=observed.outcome)
    verdict.expected = sum(len(ids) for ids in expected.values() if ids)
    fan_out = fan_out or {}
    leak_list = list(leaks)
    verdict.leaks = len(leak_list)
    for leak in leak_list[:5]:
        _note(verdict, f"secret leaked: {leak.secret} in {leak.where}")

    if observed.outcome != expectation.outcome:
        _note(verdict, f"outcome {observed.outcome}, expected {expectation.outcome}")
    if expectation.outcome == "refused":
        if observed.partitions or observed.rows or observed.success_marker:
            _note(verdict, "a refused request still produced a run")
        return verdict

    # --- accounting ------------------------------------------------------------------------------------------
    seen = Counter((p["stream"], p.get("parent_id")) for p in observed.partitions)
    for key, count in seen.items():
        if count > 1:
            _note(verdict, f"partition {key} reported {count} times")
    by_key = {(p["stream"], p.get("parent_id")): p for p in observed.partitions}
    stream_wide = {p["stream"]: p for p in observed.partitions
                   if p.get("parent_id") is None and p["status"] == "failed" and fan_out.get(p["stream"], False)}
    for key in by_key:
        if key not in expected and key[0] not in stream_wide:
            _note(verdict, f"manifest lists {key} which the emulator does not have")

    rows_by_partition: dict[PartitionKey, list[Row]] = {}
    # ok partitions point at their blob; a failed time-window partition may too (the slices read before the
    # failure are committed and its checkpoint resumes after them)
    blob_of = {p["blob_path"]: (p["stream"], p.get("parent_id")) for p in observed.partitions
               if p["status"] in ("ok", "failed") and p.get("blob_path")}
    for row in observed.rows:
        owner = blob_of.get(row.blob)
        if owner is None:
            continue
        rows_by_partition.setdefault(owner, []).append(row)
    verdict.written = len(observed.rows)

    for key, ids in expected.items():
        stream, parent = key
        part = by_key.get(key)
        if part is None and stream in stream_wide:
            part = stream_wide[stream]
        if part is None:
            _note(verdict, f"partition {key} missing from the manifest")
            verdict.lost += len(ids or ())
            continue
        verdict.partitions_accounted += 1
        status = part["status"]
        if status == "ok" and part.get("kind") == "changes":
            # Only what changed since the checkpoint: nothing to compare with the whole partition, but every row
            # must be a record the emulator holds (no scenario deletes records between its runs).
            verdict.ok += 1
            got = {r.record_id for r in rows_by_partition.get(key, [])}
            if ids is not None and got - ids:
                _note(verdict, f"{key}: {len(got - ids)} changed record(s) the emulator does not hold")
            continue
        if status == "ok":
            verdict.ok += 1
            if ids is None:
                _note(verdict, f"{key} is ok but its parent answers 403/404 (should be skipped)")
                continue
            written = rows_by_partition.get(key, [])
            got = {r.record_id for r in written}
            missing = ids - got
            extra = got - ids
            verdict.lost += len(missing)
            if missing:
                _note(verdict, f"{key}: {len(missing)} record(s) lost")
            if extra:
                _note(verdict, f"{key}: {len(extra)} record(s) the emulator does not hold")
            if fan_out.get(stream, False) and any(r.parent != parent for r in written):
                _note(verdict, f"{key}: rows carry another parent key")
            if int(part.get("records") or 0) != len(written):
                _note(verdict, f"{key}: manifest says {part.get('records')} records, the blob holds {len(written)}")
        elif status == "skipped":
            verdict.skipped += 1
            if ids:
                verdict.lost += len(ids)
                _note(verdict, f"{key} skipped ({part.get('reason')}) but the emulator holds {len(ids)} record(s)")
        else:
            verdict.failed += 1
            verdict.unsynced += len(ids or ())
            if stream not in expectation.failed_streams:
                _note(verdict, f"{key} failed unexpectedly: {part.get('error_code')} {part.get('error_message')}")
            elif expectation.failure_codes and part.get("error_code") not in expectation.failure_codes:
                _note(verdict, f"{key} failed with {part.get('error_code')}, expected one of "
                               f"{sorted(expectation.failure_codes)}")
            named = expectation.message_must_name.get(stream)
            if named and named not in str(part.get("error_message", "")):
                _note(verdict, f"{key} failure does not name {named!r}: {part.get('error_message')}")
            if part.get("blob_path"):
                partial = {r.record_id for r in rows_by_partition.get(key, [])}
                if ids is None or partial - ids:
                    _note(verdict, f"{key} failed and its partial blob holds records the emulator does not")
    if expectation.must_fail:
        for stream in expectation.failed_streams:
            if not any(p["stream"] == stream and p["status"] == "failed" for p in observed.partitions):
                _note(verdict, f"{stream} was expected to fail and did not")

    verdict.reruns = sum(1 for p in observed.partitions if p.get("reruns"))
    verdict.retries = sum(int(p.get("retries") or 0) for p in observed.partitions)
    if verdict.reruns < expectation.min_reruns:
        _note(verdict, f"{verdict.reruns} partition(s) re-run, expected at least {expectation.min_reruns}")
    if verdict.retries < expectation.min_retries:
        _note(verdict, f"{verdict.retries} Graph request retries, expected at least {expectation.min_retries}")

    # --- duplicates and orphans ------------------------------------------------------------------------------
    identities = Counter((r.stream, r.parent, r.record_id) for r in observed.rows)
    verdict.duplicated = sum(count - 1 for count in identities.values() if count > 1)
    if verdict.duplicated:
        _note(verdict, f"{verdict.duplicated} duplicated record(s) in the run's output")
    for blob in observed.data_blobs:
        if blob not in blob_of:
            _note(verdict, f"orphan blob not referenced by any partition: {blob}")

    # --- the success marker ----------------------------------------------------------------------------------
    any_failed = any(p["status"] == "failed" for p in observed.partitions)
    if observed.success_marker and any_failed:
        _note(verdict, "_SUCCESS written although partitions failed")
    if not observed.success_marker and not any_failed and observed.partitions:
        _note(verdict, "no _SUCCESS although every partition completed")
    if observed.success_marker and verdict.lost:
        _note(verdict, "_SUCCESS written beside lost records")
    return verdict
