-- Enqueues the deferred dependents of a parent job whose dependencies are now all met (see
-- dependency_met), and forgets the parent's dependents set. When a parent is canceled with
-- enqueue_dependents, RQ leaves the parent itself out of the check: so does ARGV[6] = "1".
--
-- The keys of dependents are known only once the set is read, so they are built here from
-- templates rendered under the key prefix by the caller (the id's place marked "\0"): no key
-- text is written in this script, and with a hash-tag prefix all of them share one slot.
--
-- KEYS[1] the parent's dependents set   KEYS[2] the queues set
-- ARGV[1] job hash template   ARGV[2] dependencies set template   ARGV[3] queue list template
-- ARGV[4] deferred registry template   ARGV[5] now, hash timestamp   ARGV[6] "1": skip the parent
-- ARGV[7] the parent's id
-- Returns the ids of the jobs it enqueued.

local function ready_to_run(dependent_id, allow_failure)
    for _, parent_id in ipairs(redis.call("SMEMBERS", fill(ARGV[2], dependent_id))) do
        if not (ARGV[6] == "1" and parent_id == ARGV[7]) then
            local status = redis.call("HGET", fill(ARGV[1], parent_id), "status")
            if not dependency_met(status, allow_failure) then
                return false
            end
        end
    end
    return true
end

local enqueued = {}
for _, dependent_id in ipairs(redis.call("SMEMBERS", KEYS[1])) do
    local job_key = fill(ARGV[1], dependent_id)
    local job = redis.call("HMGET", job_key, "status", "origin", "allow_dependency_failures",
        "enqueue_at_front")
    if job[1] == "deferred" and ready_to_run(dependent_id, job[3] == "1") then
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
redis.call("DEL", KEYS[1])
return enqueued
