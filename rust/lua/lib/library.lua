-- The shared library, prepended to every script (see rust/scripts.rs).
--
-- Keys known only once a script has read something (a dependent's id, a job's origin) are
-- built from templates the caller rendered under the key prefix, with "\0" where the id or
-- name goes: no key text is written in the scripts, and a hash-tag prefix keeps every key of a
-- deployment in one slot.

-- The templates a step's parts build keys from (job hash, dependencies set, queue list, deferred
-- registry, wake-up list, scheduled registry, and a rate limit's config hash, allowed set,
-- rate_limited set and the rl-keys set): lua/step.lua fills it once a step from its own
-- arguments, so that finish and fail (parts only) do not take ten templates a job each.
local step_templates = {}

-- `template` with `value` put in place of its "\0" marker.
local function fill(template, value)
    local at = string.find(template, "\0", 1, true)
    return string.sub(template, 1, at - 1) .. value .. string.sub(template, at + 1)
end

-- Whether a parent in `status` (false when its hash is gone) lets a dependent run, as RQ
-- decides it: a finished parent does, a failed one only for dependents that allow failure, a
-- stopped or canceled one never, and one whose hash has expired does.
local function dependency_met(status, allow_failure)
    if not status or status == "finished" then
        return true
    end
    return allow_failure and status == "failed"
end

-- Puts a job id on its queue and wakes one idle worker blocked on the queue's wake-up list
-- (kept short: a marker only says "look again").
local function push_job(queue_key, wakeup_key, job_id, at_front)
    if at_front then
        redis.call("LPUSH", queue_key, job_id)
    else
        redis.call("RPUSH", queue_key, job_id)
    end
    if redis.call("LLEN", wakeup_key) < 64 then
        redis.call("LPUSH", wakeup_key, "1")
    end
end

-- RQ 3.0's rate limits (rq/rate_limit.py). A job with a rate limit (its hash's rate_limit_key and
-- rate_limit_concurrency) holds a slot, its id in the limit's allowed set, from when it goes onto
-- its queue until its execution ends, unless it goes straight back onto its queue (a repeat or a
-- retry at once); while the slots are full it waits, status rate_limited, in the limit's
-- rate_limited set. `templates` holds rate_limit (the limit's config hash), rate_limit_allowed,
-- rate_limit_waiting, rate_limit_keys (the set of every limit's name: a key, not a template), and
-- the job, queue and wake-up templates.

-- Whether a job whose hash holds `name` and `concurrency` has a rate limit (RQ's has_rate_limit).
local function has_rate_limit(name, concurrency)
    return name and name ~= "" and (tonumber(concurrency or "") or 0) ~= 0
end

-- Fills the free slots of rate limit `name` with its waiting jobs, oldest first, as RQ's
-- ACQUIRE_AND_ENQUEUE_SCRIPT does: each goes onto its queue (its head when enqueue_at_front),
-- marked queued. A waiting entry whose job is gone or no longer rate_limited is dropped.
-- Returns the ids it promoted.
local function promote_rate_limited(templates, name, now, now_seconds)
    local allowed = fill(templates.rate_limit_allowed, name)
    local waiting = fill(templates.rate_limit_waiting, name)
    local stored = redis.call("HGET", fill(templates.rate_limit, name), "concurrency")
    local concurrency = tonumber(stored or "") or 0
    local promoted = {}
    while redis.call("ZCARD", allowed) < concurrency do
        local popped = redis.call("ZPOPMIN", waiting)
        if #popped == 0 then
            break
        end
        local job_id = popped[1]
        local job_key = fill(templates.job, job_id)
        local job = redis.call("HMGET", job_key, "origin", "status", "enqueue_at_front")
        if job[1] and job[2] == "rate_limited" then
            redis.call("ZADD", allowed, now_seconds, job_id)
            push_job(fill(templates.queue, job[1]), fill(templates.wakeup, job[1]), job_id, job[3] == "1")
            redis.call("HSET", job_key, "status", "queued", "enqueued_at", now)
            promoted[#promoted + 1] = job_id
        end
    end
    return promoted
end

-- Frees the slot job `job_id` holds in rate limit `name` and fills the free slots (RQ's
-- release_slot, which a job's ending runs unless the job went back onto its queue). With
-- `if_held`, nothing is promoted unless the job held a slot.
local function release_rate_limit_slot(templates, name, job_id, now, now_seconds, if_held)
    local released = redis.call("ZREM", fill(templates.rate_limit_allowed, name), job_id)
    if if_held and released == 0 then
        return {}
    end
    return promote_rate_limited(templates, name, now, now_seconds)
end

-- Frees the slot job `job_id` holds in rate limit `name` when it no longer needs it, for callers
-- that do not own the job's ending (cancel, delete, maintenance), as RQ's
-- RELEASE_STALE_AND_ENQUEUE_SCRIPT does: not while the job is queued or started, nor while one of
-- its executions is live (scored past `now_seconds` in its executions index `executions_key`);
-- then fills the free slots if it freed one. Returns the ids promoted.
local function release_stale_slot(templates, name, job_id, executions_key, now, now_seconds)
    local status = redis.call("HGET", fill(templates.job, job_id), "status")
    if status == "queued" or status == "started" then
        return {}
    end
    if redis.call("ZCOUNT", executions_key, "(" .. now_seconds, "+inf") > 0 then
        return {}
    end
    return release_rate_limit_slot(templates, name, job_id, now, now_seconds, true)
end

-- Makes job `job_id` (saved already) wait for a slot of rate limit `name`, registering the limit
-- with `concurrency` as RQ's _enqueue_rate_limited_job does, then fills the free slots (which may
-- promote the job at once). Returns the ids promoted.
local function wait_for_rate_limit(templates, job_key, job_id, name, concurrency, now, now_seconds)
    redis.call("SADD", templates.rate_limit_keys, name)
    redis.call("HSET", fill(templates.rate_limit, name), "concurrency", concurrency)
    redis.call("HSET", job_key, "status", "rate_limited")
    redis.call("ZADD", fill(templates.rate_limit_waiting, name), now_seconds, job_id)
    return promote_rate_limited(templates, name, now, now_seconds)
end

-- Enqueues the deferred dependents of `parent_id` whose parents are all met now, and takes
-- them out of the parent's dependents set (the others stay, for when the parent runs again).
-- With `skip_parent`, the parent itself counts as met (RQ's rule when it is canceled with
-- enqueue_dependents). `templates` holds job, dependencies, queue, deferred and wakeup
-- templates, and the rate-limit ones (see has_rate_limit): a dependent with a rate limit waits
-- for a slot, as RQ enqueues a ready dependent. Returns the ids it enqueued.
local function release_dependents(dependents_key, queues_key, parent_id, skip_parent, templates, now,
        now_epoch)
    local function ready_to_run(dependent_id, allow_failure)
        for _, other_id in ipairs(redis.call("SMEMBERS", fill(templates.dependencies, dependent_id))) do
            if not (skip_parent and other_id == parent_id) then
                local status = redis.call("HGET", fill(templates.job, other_id), "status")
                if not dependency_met(status, allow_failure) then
                    return false
                end
            end
        end
        return true
    end

    local enqueued = {}
    for _, dependent_id in ipairs(redis.call("SMEMBERS", dependents_key)) do
        local job_key = fill(templates.job, dependent_id)
        local job = redis.call("HMGET", job_key, "status", "origin", "allow_dependency_failures",
            "enqueue_at_front", "rate_limit_key", "rate_limit_concurrency")
        -- A deferred dependent with no origin (a corrupt hash) has no queue to go to: it stays.
        if job[1] == "deferred" and job[2] and ready_to_run(dependent_id, job[3] == "1") then
            local origin = job[2]
            local queue_key = fill(templates.queue, origin)
            redis.call("ZREM", fill(templates.deferred, origin), dependent_id)
            redis.call("SADD", queues_key, queue_key)
            if has_rate_limit(job[5], job[6]) then
                wait_for_rate_limit(templates, job_key, dependent_id, job[5], job[6], now,
                    math.floor(tonumber(now_epoch)))
            else
                redis.call("HSET", job_key, "status", "queued", "enqueued_at", now)
                push_job(queue_key, fill(templates.wakeup, origin), dependent_id, job[4] == "1")
            end
            redis.call("SREM", dependents_key, dependent_id)
            enqueued[#enqueued + 1] = dependent_id
        end
    end
    return enqueued
end

-- Puts back a job taken ahead that never started (lua/release.lua, lua/reclaim.lua, and
-- lua/fail.lua for an abandoned one): no longer held, queued as it was before the take, at the
-- front of its queue.
local function put_back_held(job_key, queue_key, wakeup_key, job_id)
    redis.call("HDEL", job_key, "jobpool_held")
    redis.call("HSET", job_key, "status", "queued", "started_at", "", "worker_name", "")
    push_job(queue_key, wakeup_key, job_id, true)
end

-- Writes RQ's records of a running execution: its hash, its entry in the job's executions
-- index and in its worker's executions set (all three together, or none: see end_execution).
local function write_execution_records(execution_key, index_key, worker_executions_key, job_id,
        execution_id, created_at, last_heartbeat, worker, ttl, now_seconds)
    redis.call("HSET", execution_key, "id", execution_id, "job_id", job_id, "created_at", created_at,
        "last_heartbeat", last_heartbeat, "worker_name", worker)
    redis.call("EXPIRE", execution_key, ttl)
    redis.call("ZADD", index_key, now_seconds + ttl + 60, execution_id)
    redis.call("EXPIRE", index_key, ttl + 60)
    redis.call("SADD", worker_executions_key, job_id .. ":" .. execution_id)
    redis.call("EXPIRE", worker_executions_key, ttl + 60)
end

-- Forgets a running execution, whose started-registry entry the caller has removed: its hash,
-- index entry and worker entry. A pool's quick jobs never had them (they are written at the
-- supervisor's heartbeat, all three at once): one DEL finds that out, and a record that read the
-- job hash's `jobpool_records` field (the execution whose records were written, set with them:
-- see write_execution_records' callers) need not call this at all.
local function end_execution(execution_key, index_key, worker_executions_key, job_id, execution_id)
    if redis.call("DEL", execution_key) == 0 then
        return
    end
    redis.call("ZREM", index_key, execution_id)
    if worker_executions_key then
        redis.call("SREM", worker_executions_key, job_id .. ":" .. execution_id)
    end
end

-- The id of the job whose execution `execution_id` is in the started registry `registry_key`
-- (its member is `<job_id>:<execution_id>`), or nil. A scan: for the rare calls that know only
-- the execution id (a repeated take, a hold taken back).
local function find_execution(registry_key, execution_id)
    local cursor = "0"
    repeat
        local page = redis.call("ZSCAN", registry_key, cursor, "MATCH", "*:" .. execution_id, "COUNT", 1000)
        cursor = page[1]
        local member = page[2][1]
        if member then
            return string.sub(member, 1, #member - #execution_id - 1)
        end
    until cursor == "0"
    return nil
end

-- Values read from a job or worker hash, which any client may have written: each check below
-- returns nil (or a default) for a value that would make a later command fail, so a script can
-- check everything before its first write. Redis does not undo a script's writes when it errors
-- halfway, and a job half-recorded can end in no queue and no registry.

-- The whole number of seconds in `text` (a TTL or timeout from a hash), or nil when it is not
-- one EXPIRE and ZADD take: not a whole number, below -1, or 1e15 or more (EXPIRE refuses about
-- 9.2e15 s and more; below 9e15, a double holds every whole number exactly).
local function stored_seconds(text)
    local seconds = tonumber(text or "")
    if seconds == nil or seconds ~= math.floor(seconds) or seconds < -1 or seconds >= 1e15 then
        return nil
    end
    return seconds
end

-- `seconds` as the integer text EXPIRE takes (a Lua number may otherwise be sent as "1e+15").
local function whole(seconds)
    return string.format("%d", seconds)
end

-- The number of seconds in `text` (the caller's measure of a job's working time), or 0 when it
-- is not a finite number HINCRBYFLOAT accepts.
local function finite_seconds(text)
    local seconds = tonumber(text or "")
    if seconds == nil or seconds ~= seconds or seconds == math.huge or seconds == -math.huge then
        return 0
    end
    return seconds
end

-- The retries left in `text` (a job's retries_left), 0 when it is not a whole number below 1e15.
local function stored_count(text)
    local count = stored_seconds(text)
    if count == nil or count < 0 then
        return 0
    end
    return count
end

-- The seconds to wait before the next retry of a job with `retries_left` retries left, picked
-- as RQ picks it from the job's retry_intervals (a JSON list of seconds); 0, a retry at once,
-- when the list is missing, not JSON, not a list, or its entry not a number of seconds.
local function retry_interval(intervals_json, retries_left)
    if not intervals_json then
        return 0
    end
    local decoded, intervals = pcall(cjson.decode, intervals_json)
    if not decoded or type(intervals) ~= "table" then
        return 0
    end
    local interval = intervals[math.max(#intervals - retries_left, 0) + 1]
    if type(interval) ~= "number" or interval ~= interval or interval < 0 or interval >= 1e15 then
        return 0
    end
    return interval
end

-- The next run of a job that finished with `repeats_left` repeats left (RQ's Repeat.schedule),
-- read before the caller's first write: {interval, rest (its repeat_intervals less the one used,
-- as JSON text, or nil to leave them), repeats_left (one fewer), origin, ttl}; nil when the job
-- has no origin to go back to. As RQ picks it, the interval is the first of repeat_intervals
-- (0, at once, when there are none), and the last one stays for the repeats after it; a
-- first interval that is not a number of seconds counts as 0 (and the list is left as it is).
local function next_repeat(job_key, repeats_left)
    local job = redis.call("HMGET", job_key, "repeat_intervals", "origin", "ttl")
    if not job[2] or job[2] == "" then
        return nil
    end
    local again = {interval = 0, repeats_left = repeats_left - 1, origin = job[2],
        ttl = stored_seconds(job[3])}
    local decoded, intervals = pcall(cjson.decode, job[1] or "")
    local first = decoded and type(intervals) == "table" and intervals[1]
    if type(first) == "number" and first == first and first >= 0 and first < 1e15 then
        again.interval = first
        if #intervals > 1 then
            -- The text after the first entry (a number: no comma inside it), so the list keeps the
            -- form its writer gave it.
            local comma = string.find(job[1], ",", 1, true)
            again.rest = "[" .. (string.gsub(string.sub(job[1], comma + 1), "^%s*", ""))
        end
    end
    return again
end

-- Sends a finished job round again as `again` (from next_repeat) says: onto its queue's tail
-- now, or into its queue's scheduled registry (`templates.scheduled`) for a non-zero interval.
local function repeat_job(job_key, job_id, again, templates, now, now_epoch)
    local fields = {"repeats_left", whole(again.repeats_left)}
    if again.rest then
        fields[#fields + 1] = "repeat_intervals"
        fields[#fields + 1] = again.rest
    end
    if again.interval == 0 then
        redis.call("HSET", job_key, "status", "queued", "enqueued_at", now, unpack(fields))
        push_job(fill(templates.queue, again.origin), fill(templates.wakeup, again.origin), job_id, false)
    else
        redis.call("HSET", job_key, "status", "scheduled", unpack(fields))
        redis.call("ZADD", fill(templates.scheduled, again.origin),
            whole(math.floor(tonumber(now_epoch) + again.interval)), job_id)
    end
    if again.ttl and again.ttl > 0 then
        redis.call("EXPIRE", job_key, whole(again.ttl))
    end
end

-- The worker counters a script run adds to (successful_job_count, failed_job_count,
-- total_working_time), by worker key; written once, at the end of the run (flush_worker_counts,
-- which step.lua calls after its parts): a batch's records cost the worker hash one read and
-- two writes rather than that many a record.
local worker_counts = {}

-- Whether workers are suspended (`rq suspend`), looked up once a script run: the takes of a
-- batch (parts of one lua/step.lua run) would each look it up, and it cannot change during a run.
local suspended_in_run = nil
local function suspended(flag_key)
    if suspended_in_run == nil then
        suspended_in_run = redis.call("EXISTS", flag_key) == 1
    end
    return suspended_in_run
end

-- A counter as another client may have stored it: true when HINCRBY (count) or HINCRBYFLOAT
-- (time) would take it, false when it must be started again instead.
local function count_ok(text)
    return not text or text == "0" or (string.find(text, "^%-?[1-9]%d*$") ~= nil and #text <= 15)
end

local function time_ok(text)
    return not text or (string.find(text, "^%-?%d+%.?%d*$") ~= nil and #text <= 30)
end

-- What recording an ended execution adds to its worker's counters (`count_field` by one,
-- total_working_time by `seconds`), decided before the script's first write: a counter that
-- HINCRBY or HINCRBYFLOAT would refuse (another client's garbage) is started again instead.
-- Returns a function that adds it, or nil when the worker hash is missing.
local function worker_counting(worker_key, count_field, seconds)
    if not worker_key then
        return nil
    end
    local counts = worker_counts[worker_key]
    if counts == nil then
        if redis.call("EXISTS", worker_key) == 0 then
            worker_counts[worker_key] = false
            return nil
        end
        local stored = redis.call("HMGET", worker_key, "successful_job_count", "failed_job_count",
            "total_working_time")
        counts = {
            ok = {successful_job_count = count_ok(stored[1]), failed_job_count = count_ok(stored[2]),
                total_working_time = time_ok(stored[3])},
            added = {successful_job_count = 0, failed_job_count = 0},
            seconds = 0,
        }
        worker_counts[worker_key] = counts
    elseif counts == false then
        return nil
    end
    return function()
        counts.added[count_field] = counts.added[count_field] + 1
        counts.seconds = counts.seconds + seconds
    end
end

-- Writes what the run's records added to their workers' counters (see worker_counts).
local function flush_worker_counts()
    for worker_key, counts in pairs(worker_counts) do
        if counts and counts.added.successful_job_count + counts.added.failed_job_count > 0 then
            for field, added in pairs(counts.added) do
                if added > 0 and counts.ok[field] then
                    redis.call("HINCRBY", worker_key, field, added)
                elseif added > 0 then
                    redis.call("HSET", worker_key, field, added)
                end
            end
            local worked = string.format("%.6f", counts.seconds)
            if counts.ok.total_working_time then
                redis.call("HINCRBYFLOAT", worker_key, "total_working_time", worked)
            else
                redis.call("HSET", worker_key, "total_working_time", worked)
            end
        end
    end
end
