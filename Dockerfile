# syntax=docker/dockerfile:1
# docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t keyward .
# (.dockerignore keeps .git, keyward-dev/, node_modules and build output out
# of the context, so the version comes in as this argument.)
FROM golang:1.26-bookworm AS build
ARG VERSION="(devel)"
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -ldflags "-s -w -X github.com/keyward/keyward/server.Version=${VERSION}" -o /out/keyward ./cmd/keyward

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /var/lib/keyward --create-home keyward
COPY --from=build /out/keyward /usr/local/bin/keyward
USER 10001:10001
WORKDIR /var/lib/keyward
EXPOSE 6732 8550 9583
ENTRYPOINT ["/usr/local/bin/keyward"]
CMD ["serve", "--config", "/etc/keyward/keyward.yaml"]
