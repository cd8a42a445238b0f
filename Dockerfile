# syntax=docker/dockerfile:1
# Build a static credsync binary, then ship it alone on a distroless base as a non-root user.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/credsync ./cmd/credsync

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/credsync /usr/local/bin/credsync
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/credsync"]
CMD ["serve", "--config", "/etc/credsync/credsync.yaml"]
