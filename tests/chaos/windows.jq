# Create windows still open in a worker's log (jq -Rnr -f windows.jq LOG).
#
# Luma: a window opens when the worker logs "luma create sent" for a job's
# step and closes when it logs "luma generation checkpointed" for the same
# job and step, or when the create's answer came back without a paid
# generation to keep ("step failed", "step stopped") or the id could not be
# committed ("checkpoint failed", "job fenced at checkpoint": the worker
# deleted it itself, a kill afterwards changes nothing).
# Hedra: the same from "hedra create sent" (once worker/step_lipsync.c logs
# it) to "hedra job checkpointed" or the end of the step.
# Run on the log of a worker at the moment it was SIGKILLed or SIGSTOPped,
# what is left open is a create that may have taken effect without its id
# reaching PostgreSQL, so one more create for that step is explained.
# Prints "job_id<TAB>step" per open window. Lines that are not JSON objects
# (sanitizer output, a partial last line) are skipped.
reduce (inputs | fromjson? | select(type == "object" and (.job_id | type) == "string"
                                    and (.step | type) == "string")) as $l
  ({};
   ($l.job_id + "\t" + $l.step) as $k
   | if ($l.msg | IN("luma create sent", "hedra create sent")) then .[$k] = true
     elif ($l.msg | IN("luma generation checkpointed", "hedra job checkpointed", "step failed",
                       "step stopped", "step succeeded", "checkpoint failed",
                       "job fenced at checkpoint")) then del(.[$k])
     else . end)
| keys[]
