-- A worker's step in one script run: the scripts it needs (finish.lua or fail.lua for each job
-- that ended, take.lua for each job to take), run in order,
-- as one call rather than one call each. Each part is that script's text, unchanged, made a
-- function of its own KEYS and ARGV (see rust/scripts.rs), so each keeps the contract its
-- header states, and a part that finds nothing to do (a stale record) does not stop the next.
-- The records' additions to their workers' counters are written once, after the parts (see
-- worker_counts in the library). Every record is sent through this script, a step of one part
-- too (rust/step.rs).
--
-- ARGV[1] p, the number of parts; ARGV[2..11] the key templates the parts share (see
-- step_templates in the library); for part i = 1..p: ARGV[11+i] its script's name,
-- ARGV[11+p+i] its number of keys, ARGV[11+2p+i] its number of arguments. Then KEYS holds each
-- part's keys, and ARGV (from 12+3p) each part's arguments, in part order.
-- Returns each part's reply, in order (false, a nil reply, for a part that returned nil).

local parts = {finish = finish_part, fail = fail_part, take = take_part}
local p = tonumber(ARGV[1])
for i, name in ipairs({"job", "dependencies", "queue", "deferred", "wakeup", "scheduled", "rate_limit",
        "rate_limit_allowed", "rate_limit_waiting", "rate_limit_keys"}) do
    step_templates[name] = ARGV[1 + i]
end
local replies = {}
local SHARED = 11
local k, a = 0, SHARED + 3 * p
for i = 1, p do
    local run = parts[ARGV[SHARED + i]]
    local key_count, arg_count = tonumber(ARGV[SHARED + p + i]), tonumber(ARGV[SHARED + 2 * p + i])
    local reply = run({unpack(KEYS, k + 1, k + key_count)}, {unpack(ARGV, a + 1, a + arg_count)})
    if reply == nil then
        reply = false
    end
    replies[i] = reply
    k, a = k + key_count, a + arg_count
end
flush_worker_counts()
return replies
