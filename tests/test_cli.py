"""The shared CLI plumbing: a logger level set for one script run does not leak into the next."""

import logging

from ned_outlier.cli import logger_level


def test_logger_level_is_restored_even_after_an_error():
    logger = logging.getLogger("ned_outlier.test_cli")
    logger.setLevel(logging.DEBUG)
    try:
        with logger_level(logger.name, logging.WARNING):
            assert logger.level == logging.WARNING
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert logger.level == logging.DEBUG
