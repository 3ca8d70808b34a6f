#!/usr/bin/env bash
# The README's two commands on a machine that has nothing installed: builds a minimal Debian 12 root with
# mmdebstrap (from the Debian registry), copies this working tree in (tracked and untracked files that git
# does not ignore: what a fresh clone of the next commit would hold), and runs inside it, as root,
#   scripts/demo.sh    and then    scripts/test.sh
# exactly as the README says. The root has no CUDA toolkit, so the build is CPU-only, as on a laptop without
# one (the CUDA build is what CI and the GPU check cover). pets-mini is copied in beside the repository when
# it is found at ../shared/data/pets-mini, so the data tests run (--no-data leaves it out: they then skip,
# saying so). Prints both exit statuses and the test summary last; exits 0 only when both passed.
#
#   scripts/fresh-check.sh [--no-data] [--keep] [--dir DIR]    (root; default DIR /var/tmp/thaw-fresh)
#
# Not part of CI: it takes 15-25 minutes on two cores. Run it before a change to the install list lands.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dir=/var/tmp/thaw-fresh
data=1
keep=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-data) data=0 ;;
    --keep) keep=1 ;;
    --dir) dir=$2; shift ;;
    *) echo "fresh-check: unknown argument '$1' (see the header of $0)" >&2; exit 2 ;;
  esac
  shift
done
[[ $(id -u) -eq 0 ]] || { echo "fresh-check: needs root (mmdebstrap, chroot, mount)" >&2; exit 2; }
command -v mmdebstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq mmdebstrap; }

root=$dir/root
mounts=()
cleanup() {
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -R -l "${mounts[i]}" 2>/dev/null || true; done
  # --one-file-system: never into a mount that failed to come off (the host's /dev, /proc, /sys)
  [[ $keep -eq 1 ]] || rm -rf --one-file-system "$dir"
}
trap cleanup EXIT
rm -rf --one-file-system "$dir"
mkdir -p "$dir"

echo "fresh-check: building a minimal Debian 12 root in $root"
mmdebstrap --variant=minbase --include=ca-certificates bookworm "$root" \
  "deb http://deb.debian.org/debian bookworm main" \
  "deb http://deb.debian.org/debian bookworm-updates main" \
  "deb http://deb.debian.org/debian-security bookworm-security main"

mkdir -p "$root/work/thaw"
git -C "$repo" ls-files -z --cached --others --exclude-standard |
  (cd "$repo" && xargs -0 tar -cf - --no-recursion) | tar -xf - -C "$root/work/thaw"
if [[ $data -eq 1 && -f "$repo/../shared/data/pets-mini/annotations/list.txt" ]]; then
  mkdir -p "$root/work/shared/data"
  cp -a "$repo/../shared/data/pets-mini" "$root/work/shared/data/"
  echo "fresh-check: pets-mini copied in"
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"
for m in proc sys dev; do
  mount --rbind "/$m" "$root/$m"
  mounts+=("$root/$m")
done

run_inside() {  # a command in the fresh root, with a clean environment, from the repository
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    chroot "$root" bash -c "cd /work/thaw && $1"
}
demo_status=0
run_inside "scripts/demo.sh" 2>&1 | tee "$dir/demo.log" || demo_status=${PIPESTATUS[0]}
test_status=0
run_inside "scripts/test.sh" 2>&1 | tee "$dir/test.log" || test_status=${PIPESTATUS[0]}

echo
echo "fresh-check: Debian 12 root from mmdebstrap, CPU-only build, pets-mini $([[ -d $root/work/shared ]] && echo present || echo absent)"
grep -E "^thaw demo|Pretrained head-only" "$dir/demo.log" | tail -2 || true
grep -E "tests passed|tests failed" "$dir/test.log" | tail -1 || true
echo "fresh-check: scripts/demo.sh exit status $demo_status"
echo "fresh-check: scripts/test.sh exit status $test_status"
grep -E "^check_test_run: [0-9]+ tests" "$dir/test.log" | tail -1 || echo "fresh-check: no test summary (see $dir/test.log)"
[[ $demo_status -eq 0 && $test_status -eq 0 ]]
