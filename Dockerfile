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

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and not writable by the runtime user.
COPY --from=dependencies /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
# Numeric, so the kubelet can check runAsNonRoot; matches the Deployment's runAsUser.
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["node", "src/bin.ts"]
CMD ["serve"]
