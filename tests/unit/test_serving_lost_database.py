"""A database link lost under the pool's ping is a 503 cause; a real SQL error is not."""

from __future__ import annotations

import sqlalchemy.exc as sa_exc

from aimd.serving.app import lost_connection


def _raised_while_handling(first: BaseException, second: BaseException) -> BaseException:
    try:
        try:
            raise first
        except BaseException:
            raise second from first
    except BaseException as err:
        return err


def test_a_programming_error_raised_while_the_socket_closed_is_a_lost_connection() -> None:
    closed = OSError("connection socket closed")
    cut = _raised_while_handling(
        sa_exc.OperationalError("select 1", {}, closed),
        sa_exc.ProgrammingError("select 1", {}, RuntimeError("can't change 'autocommit' now")),
    )
    assert lost_connection(cut)


def test_a_plain_sql_error_is_not_a_lost_connection() -> None:
    bad_sql = sa_exc.ProgrammingError("selec 1", {}, RuntimeError('syntax error at or near "selec"'))
    assert not lost_connection(bad_sql)
