-- Takes, keeps or gives up a cron configuration's lock (jobpool's own key; see
-- python/jobpool/cron_claims.py). The lock only spares the other schedulers the work: each tick
-- is enqueued once by the transaction that advances the cron job's last tick, lock or not.
--
-- KEYS[1] the lock   ARGV[1] the scheduler's name   ARGV[2] time to live, ms (0: give it up)
-- Returns 1 when the scheduler holds the lock after the call, else 0.

local holder = redis.call("GET", KEYS[1])
if ARGV[2] == "0" then
    if holder == ARGV[1] then
        redis.call("DEL", KEYS[1])
    end
    return 0
end
if not holder then
    redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
    return 1
end
if holder == ARGV[1] then
    redis.call("PEXPIRE", KEYS[1], ARGV[2])
    return 1
end
return 0
