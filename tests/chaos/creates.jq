# The chaos test's duplicate-create analysis (jq -n -f creates.jq with
# --slurpfile for each input below). Inputs:
#   $stats    [GET /_sim/stats]
#   $luma     the Luma steps: {job, step, prompt} (prompt null when the step
#             never had one, e.g. a campaign whose storyboard failed)
#   $hedra    the Hedra steps: {job, step}
#   $windows  {job, step} per create window a SIGKILL or SIGSTOP interrupted
#             (windows.jq)
#   $forgot   {job, step} per generation a worker forgot because it failed at
#             the provider, was gone or its output was unusable (the retry's
#             fresh create is not a second payment: Luma refunds failed ones)
# Output: {luma: {rows, unknown, lost_known}, hedra: {rows, unknown, started,
# lost_known}}. A Luma row is one prompt: its creates may be at most 1 per
# step + interrupted windows + forgotten generations + the simulator's
# lost_creates for it (answers lost after the create took effect). A Hedra
# row is one idempotency key: at most 1 + interrupted windows of its step (a
# repeat under the same key, which Hedra does not charge again) + its
# lost_creates.
def count_by(f): reduce .[] as $x ({}; .[$x | f] += 1);

$stats[0] as $s
| ($windows | count_by(.job + "\t" + .step)) as $w
| ($forgot | count_by(.job + "\t" + .step)) as $f
| ($s.luma.creates_by_prompt // {}) as $lc
| ($s.luma.lost_creates // {}) as $ll
| ($s.hedra.creates_by_idempotency_key // {}) as $hc
| ($s.hedra.lost_creates // {}) as $hl
| {
    luma: {
      lost_known: ($s.luma | has("lost_creates")),
      rows: [$luma | map(select(.prompt != null)) | group_by(.prompt)[]
             | . as $g
             | ($g | map($w[.job + "\t" + .step] // 0) | add) as $wn
             | ($g | map($f[.job + "\t" + .step] // 0) | add) as $fn
             | ($lc[$g[0].prompt] // 0) as $c
             | ($ll[$g[0].prompt] // 0) as $l
             | {prompt: $g[0].prompt, steps: ($g | map(.job + ":" + .step)), creates: $c,
                windows: $wn, forgotten: $fn, lost: $l,
                allowed: (($g | length) + $wn + $fn + $l)}
             | .ok = (.creates <= .allowed)],
      unknown: (($lc | keys) - ($luma | map(select(.prompt != null) | .prompt)))
    },
    hedra: {
      lost_known: ($s.hedra | has("lost_creates")),
      started: ($s.hedra.jobs_started // null),
      rows: [$hc | to_entries[]
             | (.key | split(":")) as $p
             | {key: .key, job: $p[0], step: $p[1], creates: .value, lost: ($hl[.key] // 0),
                windows: ($w[$p[0] + "\t" + ($p[1] // "")] // 0)}
             | .allowed = 1 + .windows + .lost
             | .ok = (.creates <= .allowed)],
      unknown: [($hc | keys[]) as $k
                | select(($hedra | map(.job + ":" + .step)) as $known
                         | ($k | split(":")[0:2] | join(":")) as $js
                         | ($known | index([$js])) == null)
                | $k]
    }
  }
