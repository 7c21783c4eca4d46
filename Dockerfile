# syntax=docker/dockerfile:1
# airtable-mcp: a multi-stage build of the shipped binary (`--profile dist`), run as a non-root
# user on distroless/cc (glibc, CA certificates, no shell). Build from the repository root:
#   docker build -t airtable-mcp .
# Run (the token comes from the environment, never the command line):
#   docker run --rm -p 8787:8787 -e AIRTABLE_API_KEY -e AIRTABLE_MCP_AUTH_TOKENS airtable-mcp
# See deploy/ for compose (three replicas + Redis + nginx) and Kubernetes.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --profile dist --locked --bin airtable-mcp \
    && cp target/dist/airtable-mcp /usr/local/bin/airtable-mcp \
    && mkdir -p /data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/airtable-mcp /usr/local/bin/airtable-mcp
# The journal directory, owned by the non-root user (65532 = distroless "nonroot").
COPY --from=build --chown=65532:65532 /data /data
USER nonroot:nonroot
# The MCP registry matches the image to server.json by this label.
LABEL io.modelcontextprotocol.server.name="io.github.airtable-mcp/airtable-mcp"
# No OS keyring in a container: the token comes from AIRTABLE_API_KEY (or a client's
# X-Airtable-Token header). The write journal lives in /data (mount a volume there).
ENV AIRTABLE_MCP_KEYRING=none \
    AIRTABLE_MCP_JOURNAL=/data/journal.sqlite3 \
    AIRTABLE_MCP_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8787
# The binary probes itself: the image has no curl.
HEALTHCHECK --interval=15s --timeout=6s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/airtable-mcp", "health", "--url", "http://127.0.0.1:8787/healthz"]
ENTRYPOINT ["/usr/local/bin/airtable-mcp"]
# Bound to every interface without TLS: terminate TLS in front (a load balancer or ingress).
CMD ["serve", "--http", "0.0.0.0:8787", "--insecure", "--stateless", "--allowed-hosts", "localhost,127.0.0.1"]
