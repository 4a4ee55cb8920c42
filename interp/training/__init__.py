"""Training core: one loop (:mod:`.loop`) for every :class:`~.tasks.Task` (classification, language, embedding)."""
