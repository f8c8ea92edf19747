-- Shared by the scripts that decide whether a deferred job may run (prepended to each).

-- Whether a parent in `status` (false when its hash is gone) lets a dependent run, as RQ
-- decides it: a finished parent does, a failed one only for dependents that allow failure, a
-- stopped or canceled one never, and one whose hash has expired does.
local function dependency_met(status, allow_failure)
    if not status or status == "finished" then
        return true
    end
    return allow_failure and status == "failed"
end

-- `template` with the job id or queue name put in place of its "\0" marker.
local function fill(template, value)
    local at = string.find(template, "\0", 1, true)
    return string.sub(template, 1, at - 1) .. value .. string.sub(template, at + 1)
end
