# How long the jobs a SIGKILLed worker held waited to be owned again (SPEC
# §11: within the lease plus 5 s). jq -nrR --slurpfile kills K -f
# reclaims.jq LOG...: K holds {ms, log} per kill (the kill's wall-clock time
# in ms and the killed worker's log path); the logs are every worker's.
# A job counts as held when the killed log's last line about it is its claim
# or a step (no "job left worker", "job succeeded", lease loss or cancel);
# its delay runs from the kill to the first "job claimed" of it in any log
# after the kill. Jobs never claimed again (canceled meanwhile) are left out.
# Prints "n max_ms median_ms within" (within: delays <= $limit_ms), or
# "0 - - 0" when no kill left a job behind.
def ms: (.ts | sub("\\.[0-9]+Z$"; "Z") | fromdateiso8601) * 1000
        + ((.ts | capture("\\.(?<f>[0-9]{3})Z$").f // "0") | tonumber);
def ended: .msg | IN("job left worker", "job succeeded", "lease lost: abandoning job",
                     "job canceled: stopping it", "job fenced: another worker owns it now",
                     "job fenced at step commit", "job fenced at step begin");
[inputs | fromjson? | select(type == "object" and (.job_id | type) == "string")
 | . + {file: input_filename}] as $lines
| ($lines | map(select(.msg == "job claimed")) | map({job: .job_id, ms: ms})) as $claims
| [$kills[] as $k
   | ($lines | map(select(.file == $k.log)) | group_by(.job_id)
      | map(last | select((ended | not)) | .job_id)) as $held
   | $held[] as $j
   | ([$claims[] | select(.job == $j and .ms > $k.ms) | .ms] | min) as $c
   | select($c != null) | $c - $k.ms] as $d
| if ($d | length) == 0 then "0 - - 0"
  else ($d | sort) as $s
  | "\($s | length) \($s[-1]) \($s[($s | length) / 2 | floor]) \([$s[] | select(. <= $limit_ms)] | length)"
  end
