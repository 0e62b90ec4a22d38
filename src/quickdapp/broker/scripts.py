"""BullMQ's own Lua scripts, unchanged, and typed builders for exactly the calls the engine makes.

The script text is read from the installed `bullmq` package (its `commands/*.lua`, the same
files the Python and Node ports run), so the data layout stays BullMQ's and Node tools and
Bull Board keep reading it. The package is located without being imported: importing bullmq
pulls in all of redis-py and its worker, none of which the engine uses.

Each builder returns a complete `EVALSHA` command (a tuple), so the caller can either send it
alone or place it inside a MULTI/EXEC block next to other commands. KEYS and ARGV follow
bullmq/scripts.py (3.4.4) call for call; the line above each builder names the script.
"""

from __future__ import annotations

import hashlib
import importlib.util
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]

from quickdapp.broker.connection import Arg, Connection, ReplyError
from quickdapp.keys import STALLED_SNAPSHOT_SUFFIX

# name -> file in bullmq/commands (bullmq.redis_connection.SCRIPT_DEFINITIONS, the ones used here)
SCRIPT_FILES = {
    "moveToActive": "moveToActive-11.lua",
    "moveToFinished": "moveToFinished-14.lua",
    "moveToDelayed": "moveToDelayed-11.lua",
    "retryJob": "retryJob-11.lua",
    "extendLocks": "extendLocks-1.lua",
    "moveStalledJobsToWait": "moveStalledJobsToWait-9.lua",
    "updateJobScheduler": "updateJobScheduler-12.lua",
    "updateProgress": "updateProgress-3.lua",
    "addLog": "addLog-2.lua",
    "addStandardJob": "addStandardJob-9.lua",
    "addPrioritizedJob": "addPrioritizedJob-9.lua",
    "addDelayedJob": "addDelayedJob-6.lua",
}

KEY_NAMES = (
    "active wait waiting-children paused completed failed delayed repeat stalled limiter "
    "prioritized id stalled-check meta pc events marker de"
).split()


def bullmq_commands_dir() -> Path:
    """The `commands` folder of the installed bullmq package (found without importing it)."""
    spec = importlib.util.find_spec("bullmq")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the bullmq package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "commands"


def load_script_texts() -> dict[str, str]:
    """The Lua text of every script in `SCRIPT_FILES`, by name."""
    folder = bullmq_commands_dir()
    return {name: (folder / file).read_text() for name, file in SCRIPT_FILES.items()}


def now_ms() -> int:
    """Wall-clock milliseconds, the timestamps BullMQ stores and compares."""
    return round(time.time() * 1000)


def keep_jobs(remove: Any) -> dict[str, Any]:
    """removeOnComplete/removeOnFail as BullMQ's `keepJobs` (bullmq getKeepJobs)."""
    if isinstance(remove, bool):
        return {"count": 0} if remove else {"count": -1}
    if isinstance(remove, int):
        return {"count": remove}
    if isinstance(remove, dict):
        return remove
    return {"count": -1}


class QueueScripts:
    """Key names of one queue and the EVALSHA commands on them.

    `load(conn)` registers the scripts with a connection (loaded on every (re)connect);
    the builders need only the SHA1s, which are known before any connection exists.
    """

    def __init__(self, queue: str = "jobs", prefix: str = "bull") -> None:
        self.queue = queue
        self.prefix = prefix
        self.base = f"{prefix}:{queue}:"  # BullMQ's keys[""], the job key prefix
        self.keys = {name: self.base + name for name in KEY_NAMES}
        self.texts = load_script_texts()
        self.sha = {name: hashlib.sha1(text.encode()).hexdigest() for name, text in self.texts.items()}

    async def load(self, conn: Connection) -> None:
        """Register every script with `conn` (SCRIPT LOAD now and after each reconnect)."""
        for text in self.texts.values():
            await conn.load_script(text)

    def job_key(self, job_id: str) -> str:
        """The hash key of a job."""
        return self.base + job_id

    def _evalsha(self, name: str, keys: Sequence[str], args: Sequence[Arg]) -> tuple[Arg, ...]:
        return ("EVALSHA", self.sha[name], len(keys), *keys, *args)

    # moveToActive-11
    def move_to_active(
        self, token: str, lock_duration_ms: int, worker_name: str | None
    ) -> tuple[Arg, ...]:
        """Take the next job (wait or prioritized, promoting due delayed jobs first)."""
        k = self.keys
        opts: dict[str, Any] = {"token": token, "lockDuration": lock_duration_ms, "limiter": None}
        if worker_name:
            opts["name"] = worker_name  # the script stores it as the job's processedBy ("pb")
        keys = (
            k["wait"], k["active"], k["prioritized"], k["events"], k["stalled"], k["limiter"],
            k["delayed"], k["paused"], k["meta"], k["pc"], k["marker"],
        )  # fmt: skip
        return self._evalsha(
            "moveToActive", keys, (self.base, now_ms(), msgpack.packb(opts, use_bin_type=True))
        )

    # moveToFinished-14
    def move_to_finished(
        self,
        job_id: str,
        *,
        token: str,
        completed: bool,
        value: str,
        fetch_next: bool,
        lock_duration_ms: int,
        worker_name: str | None,
        remove: Any,
        attempts: int,
        attempts_made: int,
        parent_flags: dict[str, Any],
        fields_to_update: dict[str, str] | None = None,
    ) -> tuple[Arg, ...]:
        """Complete (value: the JSON return value) or fail (value: the reason) a job.

        With `fetch_next` the same call takes the next job, as Node's worker does.
        """
        k = self.keys
        target = "completed" if completed else "failed"
        keys = (
            k["wait"], k["active"], k["prioritized"], k["events"], k["stalled"], k["limiter"],
            k["delayed"], k["paused"], k["meta"], k["pc"], k[target], self.base + job_id,
            self.base + "metrics:" + target, k["marker"],
        )  # fmt: skip
        opts: dict[str, Any] = {
            "token": token,
            "keepJobs": keep_jobs(remove),
            "limiter": None,
            "lockDuration": lock_duration_ms,
            "attempts": attempts,
            "attemptsMade": attempts_made,
            "maxMetricsSize": "",
            **parent_flags,
        }
        if worker_name:
            opts["name"] = worker_name
        args: list[Arg] = [
            job_id,
            now_ms(),
            "returnvalue" if completed else "failedReason",
            value,
            target,
            "1" if fetch_next else "",
            self.base,
            msgpack.packb(opts, use_bin_type=True),
        ]
        if fields_to_update:
            args.append(_packed_fields(fields_to_update))
        return self._evalsha("moveToFinished", keys, args)

    # moveToDelayed-11
    def move_to_delayed(
        self,
        job_id: str,
        *,
        token: str,
        delay_ms: int,
        fetch_next: bool,
        lock_duration_ms: int,
        worker_name: str | None,
        fields_to_update: dict[str, str] | None,
    ) -> tuple[Arg, ...]:
        """Put a failed attempt back as delayed (a retry with backoff), counting the attempt."""
        k = self.keys
        keys = (
            k["marker"], k["active"], k["prioritized"], k["delayed"], self.base + job_id,
            k["events"], k["meta"], k["stalled"], k["wait"], k["limiter"], k["pc"],
        )  # fmt: skip
        args: list[Arg] = [
            self.base,
            str(now_ms()),
            job_id,
            token,
            delay_ms,
            "0",  # skip attempt: no, this was an attempt
            _packed_fields(fields_to_update) if fields_to_update else "",
            "1" if fetch_next else "0",
        ]
        if fetch_next:
            opts: dict[str, Any] = {
                "token": token,
                "lockDuration": lock_duration_ms,
                "limiter": None,
            }
            if worker_name:
                opts["name"] = worker_name
            args.append(msgpack.packb(opts, use_bin_type=True))
        return self._evalsha("moveToDelayed", keys, args)

    # retryJob-11
    def retry_job(
        self, job_id: str, *, token: str, lifo: bool, fields_to_update: dict[str, str] | None
    ) -> tuple[Arg, ...]:
        """Put a failed attempt straight back in wait (a retry without backoff)."""
        k = self.keys
        keys = (
            k["active"], k["wait"], k["paused"], self.base + job_id, k["meta"], k["events"],
            k["delayed"], k["prioritized"], k["pc"], k["marker"], k["stalled"],
        )  # fmt: skip
        args: list[Arg] = [self.base, now_ms(), "RPUSH" if lifo else "LPUSH", job_id, token]
        if fields_to_update:
            args.append(_packed_fields(fields_to_update))
        return self._evalsha("retryJob", keys, args)

    # extendLocks-1
    def extend_locks(
        self, job_ids: Sequence[str], tokens: Sequence[str], duration_ms: int
    ) -> tuple[Arg, ...]:
        """Renew the locks of many jobs in one call; the reply lists the ids that failed."""
        return self._evalsha(
            "extendLocks",
            (self.keys["stalled"],),
            (
                self.base,
                msgpack.packb(list(tokens), use_bin_type=True),
                msgpack.packb(list(job_ids), use_bin_type=True),
                duration_ms,
            ),
        )

    # moveStalledJobsToWait-9, between two scripts of ours in the same MULTI/EXEC.
    def stalled_check(
        self,
        max_stalled_count: int,
        stalled_interval_ms: int,
        *,
        record_in: str | None,
        lock_duration_ms: int,
    ) -> list[tuple[Arg, ...]]:
        """BullMQ's stalled check with each attempt it takes back captured in the same step.

        Run the commands in one MULTI/EXEC (`call_all`); the last reply lists the captured
        attempts as JSON objects (`stalled_attempt` reads one), and with `record_in` each is
        also added to that stream: a process that dies after the check loses none of them.
        """
        snapshot = self.base + STALLED_SNAPSHOT_SUFFIX
        capture_args = (now_ms(), max_stalled_count, lock_duration_ms)
        return [
            ("EVAL", _STALLED_SNAPSHOT, 2, self.keys["stalled"], snapshot, self.base),
            self.move_stalled_jobs_to_wait(max_stalled_count, stalled_interval_ms),
            ("EVAL", _STALLED_CAPTURE, 2, snapshot, record_in or "", self.base, *capture_args),
        ]

    def move_stalled_jobs_to_wait(
        self, max_stalled_count: int, stalled_interval_ms: int
    ) -> tuple[Arg, ...]:
        """The stalled check: jobs whose lock lapsed go back to wait (or fail); reply: ids."""
        k = self.keys
        keys = (
            k["stalled"], k["wait"], k["active"], k["stalled-check"], k["meta"], k["paused"],
            k["marker"], k["events"], k["repeat"],
        )  # fmt: skip
        return self._evalsha(
            "moveStalledJobsToWait",
            keys,
            (max_stalled_count, self.base, now_ms(), stalled_interval_ms),
        )

    # updateJobScheduler-12
    def update_job_scheduler(
        self,
        scheduler_id: str,
        *,
        next_millis: int,
        template_data: str,
        job_opts: dict[str, Any],
        producer_id: str,
    ) -> tuple[Arg, ...]:
        """Advance a job scheduler to its next iteration (when its current job starts)."""
        k = self.keys
        keys = (
            k["repeat"], k["delayed"], k["wait"], k["paused"], k["meta"], k["prioritized"],
            k["marker"], k["id"], k["events"], k["pc"], self.base + producer_id, k["active"],
        )  # fmt: skip
        args = (
            next_millis,
            scheduler_id,
            template_data,
            msgpack.packb(job_opts, use_bin_type=True),
            now_ms(),
            self.base,
            producer_id,
        )
        return self._evalsha("updateJobScheduler", keys, args)

    # updateProgress-3
    def update_progress(self, job_id: str, progress_json: str) -> tuple[Arg, ...]:
        """Store a job's progress (JSON text) and emit the `progress` event."""
        keys = (self.base + job_id, self.keys["events"], self.keys["meta"])
        return self._evalsha("updateProgress", keys, (job_id, progress_json))

    # addLog-2
    def add_log(self, job_id: str, line: str, keep_logs: int | None) -> tuple[Arg, ...]:
        """Append a line to a job's log (trimmed to `keep_logs` lines when given)."""
        keys = (self.base + job_id, self.base + job_id + ":logs")
        return self._evalsha("addLog", keys, (job_id, line, "" if keep_logs is None else keep_logs))

    # addDelayedJob-6, addPrioritizedJob-9, addStandardJob-9: bullmq Queue.add, Scripts.addJob
    def add_job(self, name: str, data_json: str, opts: dict[str, Any]) -> tuple[Arg, ...]:
        """Add one job; the reply is its id (an existing job's when it was deduplicated), or a
        negative number for a refusal.

        `opts` are job options as a submitter gives them (jobId, delay, priority, attempts,
        backoff, deduplication...); they are stored as bullmq's `Job` stores them, and the
        script is chosen as its `addJob` chooses: delayed, else prioritized, else standard.
        """
        timestamp = now_ms()
        stored = {"attempts": 0, "delay": 0, **opts, "backoff": _backoff(opts.get("backoff"))}
        deduplication = opts.get("deduplication")
        dedup_id = deduplication.get("id") if isinstance(deduplication, dict) else None
        packed_args = msgpack.packb(
            [
                self.base, opts.get("jobId") or "", name, timestamp, None, None, None, None,
                f"{self.base}de:{dedup_id}" if dedup_id else None,
            ],
            use_bin_type=True,
        )  # fmt: skip
        packed_opts = msgpack.packb(
            {_OPTS_ENCODED.get(key, key): value for key, value in stored.items()}, use_bin_type=True
        )
        args = (packed_args, data_json, packed_opts, timestamp)
        k = self.keys
        keys: tuple[str, ...]
        if opts.get("delay"):
            keys = (k["marker"], k["meta"], k["id"], k["delayed"], k["completed"], k["events"])
            return self._evalsha("addDelayedJob", keys, args)
        if opts.get("priority"):
            keys = (
                k["marker"], k["meta"], k["id"], k["prioritized"], k["delayed"], k["completed"],
                k["active"], k["events"], k["pc"],
            )  # fmt: skip
            return self._evalsha("addPrioritizedJob", keys, args)
        keys = (
            k["wait"], k["paused"], k["meta"], k["id"], k["completed"], k["delayed"],
            k["active"], k["events"], k["marker"],
        )  # fmt: skip
        return self._evalsha("addStandardJob", keys, args)


# bullmq job.optsDecodeMap, reversed: the short names some options are stored under.
_OPTS_ENCODED = {
    "failParentOnFailure": "fpof",
    "continueParentOnFailure": "cpof",
    "ignoreDependencyOnFailure": "idof",
    "removeDependencyOnFailure": "rdof",
    "keepLogs": "kl",
    "deduplication": "de",
}


def _backoff(backoff: Any) -> Any:
    """A job's backoff as bullmq's `Backoffs.normalize` stores it: a number is a fixed delay."""
    if isinstance(backoff, int) and not isinstance(backoff, bool):
        return {"type": "fixed", "delay": backoff}
    return backoff or None


def _packed_fields(fields: dict[str, str]) -> bytes:
    flat: list[str] = []
    for key, value in fields.items():
        flat += (key, value)
    packed: bytes = msgpack.packb(flat, use_bin_type=True)
    return packed


def is_noscript(reply: object) -> bool:
    """Whether `reply` is Redis's NOSCRIPT error: the script is not loaded (flushed, or Redis
    restarted) and the call ran nothing."""
    return isinstance(reply, ReplyError) and str(reply).startswith("NOSCRIPT")


async def call(conn: Connection, command: Sequence[Arg]) -> Any:
    """Run one EVALSHA; after a NOSCRIPT (scripts flushed while connected) reload and retry once."""
    try:
        return await conn.execute(*command)
    except ReplyError as exc:
        if not is_noscript(exc):
            raise
    await conn.reload_scripts()
    return await conn.execute(*command)


async def call_all(conn: Connection, commands: Sequence[Sequence[Arg]]) -> list[Any]:
    """Run `commands` in one MULTI/EXEC and return their replies; an error reply raises (after
    a NOSCRIPT, the scripts are reloaded and the whole block runs again: it must tolerate it)."""
    while True:
        replies = await conn.transaction(commands)
        error = next((reply for reply in replies if isinstance(reply, ReplyError)), None)
        if error is None:
            return replies
        if not is_noscript(error):
            raise error
        await conn.reload_scripts()


# Ours, not BullMQ's, beside its unchanged scripts: the stalled check's two neighbours.
_STALLED_SNAPSHOT = """
-- KEYS[1] the stalled set, KEYS[2] the snapshot hash; ARGV[1] the job key prefix.
-- Each job the check will judge: the attempts it started and its stall count, 'ats stc'.
redis.call('DEL', KEYS[2])
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local f = redis.call('HMGET', ARGV[1] .. id, 'ats', 'stc')
  if f[1] or f[2] then
    redis.call('HSET', KEYS[2], id, (f[1] or '0') .. ' ' .. (f[2] or '0'))
  end
end
return 0
"""

_STALLED_CAPTURE = """
-- KEYS[1] the snapshot hash, KEYS[2] a stream to add each capture to ('' for none);
-- ARGV[1] the job key prefix, ARGV[2] now (ms), ARGV[3] max stalled count, ARGV[4] lock ms.
-- A job whose stall count the check raised was taken back: capture the attempt that stalled.
local captured = {}
local snapshot = redis.call('HGETALL', KEYS[1])
for i = 1, #snapshot, 2 do
  local id = snapshot[i]
  local ats, stc = string.match(snapshot[i + 1], '(%d+) (%d+)')
  local f = redis.call('HMGET', ARGV[1] .. id, 'stc', 'name', 'data', 'processedOn', 'defa')
  if tonumber(f[1] or '0') > tonumber(stc) then
    local entry = cjson.encode({stalled = {
      job_id = id, attempt = tonumber(ats), stalls = tonumber(f[1]), name = f[2] or false,
      data = f[3] or false, processed_on = tonumber(f[4] or '') or false, deferred = f[5] or false,
      at = tonumber(ARGV[2]), limit = tonumber(ARGV[3]), lock_ms = tonumber(ARGV[4])}})
    if KEYS[2] ~= '' then
      redis.call('XADD', KEYS[2], '*', 'e', entry)
    end
    captured[#captured + 1] = entry
  end
end
redis.call('DEL', KEYS[1])
return captured
"""
