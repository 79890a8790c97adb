# Image of the Docker flavour of kitt/benchmark-action (report/action.yml): the fork-safe report
# step. release.yml builds and pushes it for every release, and report/action.yml names it by its
# full version, so a workflow that uses the action never builds anything.
# BASE_IMAGE is for tests that build this image where no registry serves the python image
# (tests/e2e/test_podman.py builds it on a Debian image with python3 and pip); releases use the default.
ARG BASE_IMAGE=python:3.12-slim-bookworm
FROM ${BASE_IMAGE}

WORKDIR /action
COPY requirements.lock pyproject.toml README.md LICENSE ./
COPY kitt ./kitt
RUN pip install --no-cache-dir --disable-pip-version-check --constraint requirements.lock . \
    && python -c "import kitt.action"
COPY entrypoint.py ./

# No USER: GitHub runs Docker actions as root so they can write /github/workspace and the file commands.
ENTRYPOINT ["python", "/action/entrypoint.py"]
