# Worker image for temporal-maritaca-batch.
#
# Debian (glibc) based on purpose: the Temporal core-bridge native module ships glibc
# binaries and does not load on musl/Alpine.
#
#   docker build -t temporal-maritaca-batch-worker .
#   docker run --rm \
#     -e TEMPORAL_ADDRESS=host.docker.internal:7233 -e TEMPORAL_NAMESPACE=default \
#     -e TEMPORAL_TASK_QUEUE=maritaca-batch -e MARITACA_API_KEY=... \
#     temporal-maritaca-batch-worker
#
# Environment read by the worker: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TASK_QUEUE,
# MARITACA_API_KEY (required), MARITACA_BASE_URL (default https://chat.maritaca.ai/api).

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: full dependency tree, compile TypeScript into lib/ ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Install scripts are skipped: the package's own `prepare` builds from sources not copied yet
# (the build runs below), and no runtime dependency needs one.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- prod-deps: production dependencies only ----
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# ---- runtime ----
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Files stay root-owned (read-only for the worker); the process runs as the unprivileged `node` user.
COPY package.json package-lock.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/lib ./lib
COPY bin ./bin
# Maritaca's tokenizer ranks (MIT, see data/tokenizer/LICENSE), read lazily by lib/tokenizer.
COPY data ./data
USER node
CMD ["node", "bin/maritaca-batch.js", "worker"]
