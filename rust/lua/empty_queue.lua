-- Empties a queue: removes every job id from the list and deletes each job's hash, results
-- stream and dependents set. Keys are built from templates rendered by the caller under the
-- key prefix, the job id's place marked "\0".
--
-- KEYS[1] queue list
-- ARGV[1] job hash template   ARGV[2] results template   ARGV[3] dependents set template
-- Returns how many jobs were removed.

local removed = 0
while true do
    local job_id = redis.call("LPOP", KEYS[1])
    if not job_id then
        break
    end
    redis.call("DEL", fill(ARGV[1], job_id), fill(ARGV[2], job_id), fill(ARGV[3], job_id))
    removed = removed + 1
end
return removed
