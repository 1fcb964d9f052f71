# syntax=docker/dockerfile:1
# The injector's image. Node 24 runs the TypeScript sources directly (type
# stripping), so there is no build step: install the production dependencies
# in one stage, copy them and the sources into a clean one.

FROM node:24-bookworm-slim AS dependencies
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only: the devDependencies (the `node` package that
# downloads a Node binary, typescript, vitest) stay out; the base image has
# Node 24. No install scripts: no production dependency needs one.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# Node's compile cache of every module the server loads, so that start-up
# skips compiling and type-stripping them (about 0.3 s of the time to ready,
# test/bench/RESULTS.md). Made by the runtime user: the cache folder's name
# carries the uid, and a cache made by another user would not be found.
FROM node:24-bookworm-slim AS compile-cache
WORKDIR /app
COPY --from=dependencies /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
RUN mkdir /compile-cache && chown 65532:65532 /compile-cache
USER 65532:65532
RUN NODE_COMPILE_CACHE=/compile-cache node --input-type=module \
      -e "await import('/app/src/main.ts'); await import('/app/src/cluster/KubeClientLive.ts')"

FROM node:24-bookworm-slim
ENV NODE_ENV=production
ENV NODE_COMPILE_CACHE=/app/.compile-cache
# V8 sizes its heap for the node's memory, not the container's: on a large node
# the young generation alone grows to 128 MiB. The webhook's live heap is about
# 45 MiB; these caps keep RSS under load near 190 MiB instead of 270-370 MiB at
# the same throughput (test/bench/RESULTS.md), well inside the 512Mi limit.
# test/bench runs the webhook with these same options.
ENV NODE_OPTIONS="--max-semi-space-size=8 --max-old-space-size=256"
WORKDIR /app
# Owned by root and not writable by the runtime user; Node only reads the cache.
COPY --from=dependencies /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
COPY --from=compile-cache /compile-cache ./.compile-cache
# Numeric, so the kubelet can check runAsNonRoot; matches the Deployment's runAsUser.
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["node", "src/bin.ts"]
CMD ["serve"]
