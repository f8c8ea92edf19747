-- Maintenance of one rate limit, as RQ's RateLimitRegistry.cleanup does it: frees the slots of
-- jobs that no longer need them (gone, ended, or in any state but queued or started, with no live
-- execution: a slot an ending could not free, the job's hash being deleted, say), fills the free
-- slots, and forgets the limit (its config hash, both sets, its name in rl-keys) once no job
-- holds or waits for a slot.
--
-- ARGV[1] the limit's name   ARGV[2] now, hash timestamp   ARGV[3] now, epoch seconds
-- ARGV[4..6] templates: job hash, queue list, wake-up list   ARGV[7] executions index template
-- ARGV[8..11] rate-limit templates: config hash, allowed set, rate_limited set; the rl-keys set
-- Returns {slots freed, jobs promoted, 1 if the limit was forgotten else 0}.

local name, now, now_seconds = ARGV[1], ARGV[2], math.floor(tonumber(ARGV[3]))
local templates = {job = ARGV[4], queue = ARGV[5], wakeup = ARGV[6], rate_limit = ARGV[8],
    rate_limit_allowed = ARGV[9], rate_limit_waiting = ARGV[10], rate_limit_keys = ARGV[11]}
local allowed = fill(templates.rate_limit_allowed, name)
local waiting = fill(templates.rate_limit_waiting, name)
local freed, promoted = 0, 0
for _, job_id in ipairs(redis.call("ZRANGE", allowed, 0, -1)) do
    local executions = fill(ARGV[7], job_id)
    promoted = promoted + #release_stale_slot(templates, name, job_id, executions, now, now_seconds)
    if not redis.call("ZSCORE", allowed, job_id) then
        freed = freed + 1
    end
end
promoted = promoted + #promote_rate_limited(templates, name, now, now_seconds)
if promoted == 0 and redis.call("ZCARD", allowed) == 0 and redis.call("ZCARD", waiting) == 0 then
    redis.call("SREM", templates.rate_limit_keys, name)
    redis.call("DEL", allowed, waiting, fill(templates.rate_limit, name))
    return {freed, promoted, 1}
end
return {freed, promoted, 0}
