-- Refreshes the heartbeats of many executions and workers in one round trip: each live
-- execution's started-registry score, execution hash and index entry, and its job's
-- last_heartbeat; each worker's last_heartbeat and the TTLs of its hash and executions set.
-- An execution no longer in the started registry (finished, or recovered) is left alone, and
-- nothing is written to a job or worker hash that is gone.
--
-- KEYS, for each execution i = 1..n: started registry, execution hash, executions index, job
-- hash (4 keys each); then, for each worker j = 1..m: worker hash, worker executions set.
-- ARGV[1] now, hash timestamp   ARGV[2] now, epoch float   ARGV[3] n   ARGV[4] m
-- ARGV, for each execution: `<job_id>:<execution_id>`, execution id, ttl (3 each);
-- then, for each worker: ttl.
-- Returns the `<job_id>:<execution_id>` of the executions that were not live.

local now, now_float = ARGV[1], tonumber(ARGV[2])
local now_seconds = math.floor(now_float)
local n, m = tonumber(ARGV[3]), tonumber(ARGV[4])
local gone = {}
for i = 1, n do
    local k, a = 4 * (i - 1), 4 + 3 * (i - 1)
    local member, execution_id, ttl = ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
    if redis.call("ZSCORE", KEYS[k + 1], member) then
        redis.call("ZADD", KEYS[k + 1], "XX", now_seconds + ttl, member)
        if redis.call("EXISTS", KEYS[k + 2]) == 1 then
            redis.call("HSET", KEYS[k + 2], "last_heartbeat", ARGV[2])
            redis.call("EXPIRE", KEYS[k + 2], ttl)
        end
        redis.call("ZADD", KEYS[k + 3], "XX", now_seconds + ttl + 60, execution_id)
        redis.call("EXPIRE", KEYS[k + 3], ttl + 60)
        if redis.call("EXISTS", KEYS[k + 4]) == 1 then
            redis.call("HSET", KEYS[k + 4], "last_heartbeat", now)
        end
    else
        gone[#gone + 1] = member
    end
end
for j = 1, m do
    local k, ttl = 4 * n + 2 * (j - 1), ARGV[4 + 3 * n + j]
    if redis.call("EXISTS", KEYS[k + 1]) == 1 then
        redis.call("HSET", KEYS[k + 1], "last_heartbeat", now)
        redis.call("EXPIRE", KEYS[k + 1], ttl)
        redis.call("EXPIRE", KEYS[k + 2], ttl)
    end
end
return gone
