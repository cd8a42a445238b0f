# The credsync image: the static binary and nothing else, FROM scratch, so it builds with no
# registry at all. Build it with `make docker`: that builds bin/credsync (static, CGO off,
# version ldflags) and hands docker build a context holding only what is copied below
# (.ci/docker-build writes it). `docker build .` in the repository root does not work: the
# context is not the repository.
FROM scratch

ARG VERSION=dev
ARG COMMIT=unknown
ARG DATE=unknown

LABEL org.opencontainers.image.title="credsync" \
      org.opencontainers.image.description="Credential-sync gateway: one rotation request pushes a rotated credential to every platform that holds a copy" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.created="${DATE}" \
      org.opencontainers.image.source="https://github.com/credsync/credsync" \
      org.opencontainers.image.url="https://github.com/credsync/credsync" \
      org.opencontainers.image.documentation="https://github.com/credsync/credsync#readme" \
      org.opencontainers.image.licenses="Apache-2.0"

# /usr/local/bin/credsync, the host's CA bundle (/etc/ssl/certs/ca-certificates.crt: vendor
# APIs are HTTPS), /etc/passwd and /etc/group naming uid/gid 65532 "credsync", an empty
# /etc/credsync for the config, and /tmp (mode 1777: the demo keeps its store and log there).
COPY rootfs/ /
# The data directory, owned by the user: the default store.dsn (credsync.db, relative) lands
# here because it is also the working directory. Mount a volume on it.
COPY --chown=65532:65532 data/ /var/lib/credsync/

USER 65532:65532
WORKDIR /var/lib/credsync
VOLUME ["/var/lib/credsync"]
EXPOSE 8080

# No shell in the image: the binary checks itself (GET /healthz on $CREDSYNC_ADDR, default
# http://127.0.0.1:8080; set CREDSYNC_ADDR when server.listen uses another port or TLS).
HEALTHCHECK --interval=15s --timeout=5s --start-period=15s --retries=3 \
    CMD ["/usr/local/bin/credsync", "healthcheck"]

ENTRYPOINT ["/usr/local/bin/credsync"]
CMD ["serve", "--config", "/etc/credsync/credsync.yaml"]
