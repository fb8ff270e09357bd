import sqlalchemy as sa


def test_postgres_and_mariadb_databases_are_isolated(postgres, mariadb):
    pg_url, my_url = postgres.new(), mariadb.new()
    for url in (pg_url, my_url):
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (id integer primary key)"))
            conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM t")).scalar() == 1
        engine.dispose()
