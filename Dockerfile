# Image of the Docker flavour of kitt/benchmark-action (report/action.yml): the fork-safe report
# step. release.yml builds and pushes it for every release, and report/action.yml names it by its
# full version, so a workflow that uses the action never builds anything.
FROM python:3.12-slim-bookworm

WORKDIR /action
COPY requirements.lock pyproject.toml README.md LICENSE ./
COPY kitt ./kitt
RUN pip install --no-cache-dir --disable-pip-version-check --constraint requirements.lock . \
    && python -c "import kitt.action"
COPY entrypoint.py ./

# No USER: GitHub runs Docker actions as root so they can write /github/workspace and the file commands.
ENTRYPOINT ["python", "/action/entrypoint.py"]
