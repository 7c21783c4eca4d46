#!/usr/bin/env bash
# Three replicas of `serve --http --stateless` in front of the strict sandbox (5/s per base,
# 30 s lockout), 300 concurrent get_records calls round robin: WITH Redis (--redis, the test
# three_replicas_share_one_base_limit_without_a_429) and WITHOUT (each replica limits on its
# own). Prints throughput, p50/p99 and the sandbox's 429s for both. Needs redis-server
# (tools/setup-test-env.sh). Not part of CI: it takes several minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
cargo test --test integration redis_replicas::three_replicas_share -- --nocapture 2>&1 | grep -E "three replicas|test result"
cargo test --test integration redis_replicas::bench_three_replicas_without_redis -- --ignored --nocapture 2>&1 | grep -E "three replicas|test result"
