# The image the cluster examples run: transfer-runner's image plus the reviewed manifests.
# Copy it into the transfers repository; its pipeline builds it on each merge to main, from
# the merged commit, and hands the digest to the Job (Kubernetes) or job definition (AWS Batch):
#
#   docker build -f transfers.Dockerfile \
#     --build-arg TRANSFER_RUNNER_IMAGE=registry.example.com/transfer-runner@sha256:DIGEST \
#     -t registry.example.com/transfers:$(git rev-parse --short HEAD) .
#
# TRANSFER_RUNNER_IMAGE: the repository Dockerfile's image, by digest (a reviewed build).
ARG TRANSFER_RUNNER_IMAGE=registry.example.com/transfer-runner:latest
FROM ${TRANSFER_RUNNER_IMAGE}
# Owned by root (COPY's default): the runner's user reads the manifests and cannot change them.
COPY transfers/ /transfers/
