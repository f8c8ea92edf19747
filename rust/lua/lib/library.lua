-- The shared library, prepended to every script (see rust/scripts.rs).
--
-- Keys known only once a script has read something (a dependent's id, a job's origin) are
-- built from templates the caller rendered under the key prefix, with "\0" where the id or
-- name goes: no key text is written in the scripts, and a hash-tag prefix keeps every key of a
-- deployment in one slot.

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

-- Enqueues the deferred dependents of `parent_id` whose parents are all met now, and takes
-- them out of the parent's dependents set (the others stay, for when the parent runs again).
-- With `skip_parent`, the parent itself counts as met (RQ's rule when it is canceled with
-- enqueue_dependents). `templates` holds job, dependencies, queue, deferred and wakeup
-- templates. Returns the ids it enqueued.
local function release_dependents(dependents_key, queues_key, parent_id, skip_parent, templates, now)
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
            "enqueue_at_front")
        if job[1] == "deferred" and ready_to_run(dependent_id, job[3] == "1") then
            local origin = job[2]
            local queue_key = fill(templates.queue, origin)
            redis.call("ZREM", fill(templates.deferred, origin), dependent_id)
            redis.call("HSET", job_key, "status", "queued", "enqueued_at", now)
            redis.call("SADD", queues_key, queue_key)
            push_job(queue_key, fill(templates.wakeup, origin), dependent_id, job[4] == "1")
            redis.call("SREM", dependents_key, dependent_id)
            enqueued[#enqueued + 1] = dependent_id
        end
    end
    return enqueued
end

-- Forgets a running execution, whose started-registry entry the caller has removed: its hash,
-- index entry and worker entry.
local function end_execution(execution_key, index_key, worker_executions_key, job_id, execution_id)
    local member = job_id .. ":" .. execution_id
    redis.call("DEL", execution_key)
    redis.call("ZREM", index_key, execution_id)
    if worker_executions_key then
        redis.call("SREM", worker_executions_key, member)
    end
end
