"""Finding a migration by its file name, so that no test hard-codes a revision id."""

from alembic.script import ScriptDirectory

from app.store.db import alembic_config


def revision_of(url: str, file_suffix: str) -> tuple[str, str]:
    """(revision, the one before it) of the migration whose file name ends with ``file_suffix``."""
    script = ScriptDirectory.from_config(alembic_config(url))
    for rev in script.walk_revisions():
        if rev.path.endswith(file_suffix):
            return rev.revision, rev.down_revision
    raise AssertionError(f"no migration *{file_suffix}")
