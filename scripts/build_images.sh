#!/usr/bin/env bash
# Build the three images with one immutable tag, <project version>-<commit>, and point the
# overlay at it: `bash scripts/build_images.sh [overlay]` (default kuberay/overlays/dev).
# A tag is never built twice from different sources: a dirty work tree is refused, and an
# existing tag is kept. Apply after committing the overlay; the RayCluster's changed image
# recreates its pods (upgradeStrategy Recreate), the Deployments roll as usual.
set -euo pipefail
cd "$(dirname "$0")/.."
overlay="${1:-kuberay/overlays/dev}"
[ -z "$(git status --porcelain)" ] || { echo "error: commit first (dirty work tree)" >&2; exit 1; }
version=$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
tag="$version-$(git rev-parse --short=12 HEAD)"
for target in serve jobs mlflow; do
  image="soccerpredict-$target:$tag"
  if docker image inspect "$image" >/dev/null 2>&1; then
    echo "$image exists: kept"
  else
    docker build --target "$target" -t "$image" .
  fi
done
sed -i -E "s/(name: soccerpredict-(serve|jobs|mlflow), newTag: )[^}]+/\1$tag/" \
  "$overlay/kustomization.yaml"
echo "overlay $overlay now names tag $tag: commit it, then kubectl apply -k $overlay"
