# The image the cluster examples run: transfer-runner's image plus the reviewed manifests.
# Copy it into the transfers repository; its pipeline builds it on each merge to main, from
# the merged commit, and hands the digest to the Job (Kubernetes) or job definition (AWS Batch):
#
#   docker build -f transfers.Dockerfile \
#     --build-arg TRANSFER_RUNNER_IMAGE=registry.example.com/transfer-runner@sha256:DIGEST \
#     --build-arg TRANSFERS_COMMIT=$(git rev-parse HEAD) \
#     -t registry.example.com/transfers:$(git rev-parse --short HEAD) .
#
# TRANSFER_RUNNER_IMAGE: the repository Dockerfile's image, by digest (a reviewed build).
ARG TRANSFER_RUNNER_IMAGE=registry.example.com/transfer-runner:latest
FROM ${TRANSFER_RUNNER_IMAGE}
# The merged commit the manifests come from: the image has no .git, and every run records this
# commit, so `report --commit SHA` finds all the workers' runs of a wave.
ARG TRANSFERS_COMMIT
ENV TRANSFER_RUNNER_GIT_COMMIT=${TRANSFERS_COMMIT}
# Owned by root (COPY's default): the runner's user reads the manifests and cannot change them.
COPY transfers/ /transfers/
