# transfer-runner as a container image, for the cluster examples (examples/cluster/) and any
# scheduler that runs images.
#
#   docker build -t registry.example.com/transfer-runner:$(git rev-parse --short HEAD) .
#   docker run --rm registry.example.com/transfer-runner:TAG validate /transfers
#
# Every byte installed comes from the lock, checked by hash: the dependencies (and setuptools and
# wheel, to build the package) from requirements/runtime.txt with --require-hashes, then the
# package itself from this build context, without resolving anything and without build
# isolation (which would fetch setuptools again, unchecked). No secret is baked in: the
# platform token, AWS credentials and the state and export URLs come from the environment at
# run time.
#
# Base image: pin it by digest in real use (python:3.11-slim@sha256:...; `docker buildx
# imagetools inspect python:3.11-slim` prints it), so that a rebuild gets the same base. Both
# stages must use the same one: the virtual environment links to its interpreter.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/transfer-runner
ENV PATH=/opt/transfer-runner/bin:$PATH
WORKDIR /src
# The dependencies first, in their own layer: rebuilt only when the lock changes.
COPY requirements/runtime.txt requirements/runtime.txt
RUN python -m pip install --require-hashes --no-deps -r requirements/runtime.txt
# Then the package (.dockerignore lets in only what the build needs).
COPY . .
RUN python -m pip install --no-deps --no-build-isolation . \
    && transfer-runner --version

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="transfer-runner" \
      org.opencontainers.image.description="Move direct email-security customers under a reseller"
# A fixed numeric user, so that Kubernetes' runAsNonRoot can check it without a name lookup.
RUN groupadd --system --gid 10001 transfer-runner \
    && useradd --system --uid 10001 --gid 10001 --home-dir /work --no-create-home \
       --shell /usr/sbin/nologin transfer-runner \
    && mkdir /work \
    && chown 10001:10001 /work
COPY --from=build /opt/transfer-runner /opt/transfer-runner
ENV PATH=/opt/transfer-runner/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/work
# The working directory takes the retry file (transfer-runner.retry) and any --report-json;
# exports are staged in the temporary directory (/tmp). With a read-only root filesystem, mount
# a writable volume on both (the Kubernetes example does).
WORKDIR /work
USER 10001:10001
ENTRYPOINT ["transfer-runner"]
CMD ["--help"]
