-- Enqueues the deferred dependents of a parent job whose dependencies are now all met, and
-- forgets the parent's dependents set. A parent that finished meets a dependency; one that
-- failed, was stopped or canceled meets it only for dependents that allow failure; a parent
-- whose hash is gone (expired) meets it.
--
-- The keys of dependents are known only once the set is read, so they are built here from
-- templates rendered under the key prefix by the caller (the job id's place marked "\0"):
-- no key text is written in this script.
--
-- KEYS[1] the parent's dependents set   KEYS[2] the queues set
-- ARGV[1] job hash template   ARGV[2] dependencies set template   ARGV[3] queue list template
-- ARGV[4] deferred registry template   ARGV[5] now, hash timestamp
-- Returns the ids of the jobs it enqueued.

local function fill(template, value)
    local at = string.find(template, "\0", 1, true)
    return string.sub(template, 1, at - 1) .. value .. string.sub(template, at + 1)
end

local function dependency_met(parent_id, allow_failure)
    local status = redis.call("HGET", fill(ARGV[1], parent_id), "status")
    if not status or status == "finished" then
        return true
    end
    return allow_failure and (status == "failed" or status == "stopped" or status == "canceled")
end

local enqueued = {}
for _, dependent_id in ipairs(redis.call("SMEMBERS", KEYS[1])) do
    local job_key = fill(ARGV[1], dependent_id)
    local job = redis.call("HMGET", job_key, "status", "origin", "allow_dependency_failures",
        "enqueue_at_front")
    if job[1] == "deferred" then
        local allow_failure = job[3] == "1"
        local ready = true
        for _, parent_id in ipairs(redis.call("SMEMBERS", fill(ARGV[2], dependent_id))) do
            if not dependency_met(parent_id, allow_failure) then
                ready = false
                break
            end
        end
        if ready then
            local origin = job[2]
            local queue_key = fill(ARGV[3], origin)
            redis.call("ZREM", fill(ARGV[4], origin), dependent_id)
            redis.call("HSET", job_key, "status", "queued", "enqueued_at", ARGV[5])
            redis.call("SADD", KEYS[2], queue_key)
            if job[4] == "1" then
                redis.call("LPUSH", queue_key, dependent_id)
            else
                redis.call("RPUSH", queue_key, dependent_id)
            end
            enqueued[#enqueued + 1] = dependent_id
        end
    end
end
redis.call("DEL", KEYS[1])
return enqueued
