# syntax=docker/dockerfile:1
# The oauthapp-operator image: `docker build -t oauthapp-operator:0.1.0 .` (deploy/ runs that tag).
# Two stages: `build` compiles TypeScript with the dev dependencies; the runtime stage gets only
# dist/, the production node_modules and package.json ("type": "module"), and runs as a fixed
# non-root UID, as deploy/base/deployment.yaml expects.
# test/integration/dockerfile.test.ts replays this file's COPY and RUN steps without Docker, so
# keep the RUN lines plain commands that work in any directory.

# Node.js 24 LTS, as package.json's engines field requires. Pin a digest for reproducible builds:
# --build-arg NODE_IMAGE=node:24-bookworm-slim@sha256:...
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Dependencies before sources, so a source change reuses the installed layer.
COPY package.json package-lock.json ./
# --ignore-scripts: the only install script in the tree is the `node` devDependency's, which
# downloads a second Node.js for local development; this image has Node.js 24 already.
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build
# Drop the dev dependencies (TypeScript, jest, the `node` package) before the runtime stage copies node_modules.
RUN npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE}
LABEL org.opencontainers.image.title="oauthapp-operator" \
      org.opencontainers.image.description="Kubernetes operator that keeps OAuth 2.0 app credentials and never-expired access tokens in Secrets" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and not writable by the operator's user: the process cannot change its own code.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Numeric, so that Kubernetes can check runAsNonRoot without an /etc/passwd entry.
USER 65532:65532
# 8080: /metrics, /healthz, /readyz. 8081: the OAuth callback (/oauth/callback).
EXPOSE 8080 8081
# Exec form: node is PID 1 and gets SIGTERM itself, and finishes in-flight work before exiting.
ENTRYPOINT ["node", "dist/main.js"]
