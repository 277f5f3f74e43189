# syntax=docker/dockerfile:1
# Multi-stage build: a static teamgate binary on distroless, as non-root.
#   docker build --build-arg VERSION=v0.1.0 --build-arg COMMIT=$(git rev-parse HEAD) -t teamgate .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
ARG DATE=unknown
# modernc.org/sqlite is pure Go, so CGO stays off and the binary is static.
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.date=${DATE}" \
      -o /out/teamgate ./cmd/teamgate

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/teamgate /usr/local/bin/teamgate
# SQLite users mount a volume here; PostgreSQL users need nothing writable.
WORKDIR /var/lib/teamgate
USER nonroot:nonroot
EXPOSE 4180
# With server.tls_cert_file set, override this with an https --url (docs/deploy.md).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/teamgate", "healthcheck", "--url", "http://127.0.0.1:4180/teamgate/healthz"]
ENTRYPOINT ["/usr/local/bin/teamgate"]
CMD ["serve", "--config", "/etc/teamgate/config.yaml"]
