-- Refreshes the heartbeats of many executions and workers in one round trip: each live
-- execution's started-registry score and its job's last_heartbeat, and RQ's records of it (its
-- execution hash, index entry and worker's executions set), written here the first time (a
-- pool's worker takes without them: lua/take.lua), and its job no longer marked held (a job
-- taken ahead in a batch starts with no write of its own; `jobpool_records` names the execution
-- whose records exist, for its record to remove them); each worker's last_heartbeat and the
-- TTLs of its hash and executions set.
-- An execution no longer in the started registry (finished, or recovered) is left alone, and
-- nothing is written to a job hash that is gone. A worker given with its registration is
-- registered again if its hash has neither birth nor death (Redis lost it: a restart without
-- persistence, or the hash expired while no beat got through), and put back in the worker sets
-- on every beat while it lives, so `rq info` always sees it; a worker without one, or a dead
-- one, is only refreshed if its hash exists.
--
-- KEYS, for each execution i = 1..n: started registry, execution hash, executions index, job
-- hash, its worker's executions set (5 keys each); then, for each worker j = 1..m: worker hash, worker executions set, and
-- with a registration, the workers set and the worker set of each of its q queues.
-- ARGV[1] now, hash timestamp   ARGV[2] now, epoch float   ARGV[3] n   ARGV[4] m
-- ARGV, for each execution: `<job_id>:<execution_id>`, execution id, ttl, job id, when it
-- started (epoch float), worker name (6 each);
-- then, for each worker: ttl, q (-1: no registration), and with a registration, f and f
-- field-value pairs of its hash (all but birth and last_heartbeat, set to now).
-- Returns the `<job_id>:<execution_id>` of the executions that were not live.

local now, now_float = ARGV[1], tonumber(ARGV[2])
local now_seconds = math.floor(now_float)
local n, m = tonumber(ARGV[3]), tonumber(ARGV[4])
local gone = {}
for i = 1, n do
    local k, a = 5 * (i - 1), 4 + 6 * (i - 1)
    local member, execution_id, ttl = ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
    if redis.call("ZSCORE", KEYS[k + 1], member) then
        redis.call("ZADD", KEYS[k + 1], "XX", now_seconds + ttl, member)
        if redis.call("EXISTS", KEYS[k + 4]) == 1 then -- none for a job deleted as it runs
            write_execution_records(KEYS[k + 2], KEYS[k + 3], KEYS[k + 5], ARGV[a + 4], execution_id,
                ARGV[a + 5], ARGV[2], ARGV[a + 6], ttl, now_seconds)
            redis.call("HSET", KEYS[k + 4], "last_heartbeat", now, "jobpool_records", execution_id)
            if redis.call("HGET", KEYS[k + 4], "jobpool_held") == execution_id then
                -- Taken in a batch and started with no write of its own (its record writes its
                -- start): it runs, as recovery must know.
                redis.call("HDEL", KEYS[k + 4], "jobpool_held")
            end
        end
    else
        gone[#gone + 1] = member
    end
end
local k, a = 5 * n, 4 + 6 * n
for _ = 1, m do
    local worker_key, executions_key = KEYS[k + 1], KEYS[k + 2]
    local ttl, q = ARGV[a + 1], tonumber(ARGV[a + 2])
    k, a = k + 2, a + 2
    if q >= 0 then
        local f = tonumber(ARGV[a + 1])
        local registered = redis.call("HMGET", worker_key, "birth", "death")
        if not registered[2] then
            if not registered[1] then
                redis.call("HSET", worker_key, "birth", now, unpack(ARGV, a + 2, a + 1 + 2 * f))
            end
            for i = 1, q + 1 do
                redis.call("SADD", KEYS[k + i], worker_key)
            end
        end
        k, a = k + q + 1, a + 1 + 2 * f
    end
    if redis.call("EXISTS", worker_key) == 1 then
        redis.call("HSET", worker_key, "last_heartbeat", now)
        redis.call("EXPIRE", worker_key, ttl)
        redis.call("EXPIRE", executions_key, ttl)
    end
end
return gone
