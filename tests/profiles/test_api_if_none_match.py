"""`If-None-Match` as RFC 9110 13.1.2 reads it: a list of tags, or `*` for any current
representation (PostgreSQL, Redis)."""

from starlette.testclient import TestClient

from pipewarden.serve.profiles_api import create_profiles_app
from tests.profiles.test_api import AUTH, shop  # noqa: F401 - the fixture


def test_a_star_matches_an_existing_profile_only(shop) -> None:  # noqa: F811
    client = TestClient(create_profiles_app(shop[1]))

    existing = client.get("/profiles/1", headers={**AUTH, "If-None-Match": "*"})
    missing = client.get("/profiles/nobody", headers={**AUTH, "If-None-Match": "*"})

    assert existing.status_code == 304
    assert missing.status_code == 200 and missing.headers["X-Profile-Fallback"] == "default"


def test_a_list_of_tags_and_a_weak_tag_match(shop) -> None:  # noqa: F811
    client = TestClient(create_profiles_app(shop[1]))
    etag = client.get("/profiles/1", headers=AUTH).headers["ETag"]

    listed = client.get("/profiles/1", headers={**AUTH, "If-None-Match": f'"other", {etag}'})
    weak = client.get("/profiles/1", headers={**AUTH, "If-None-Match": f"W/{etag}"})
    part = client.get("/profiles/1", headers={**AUTH, "If-None-Match": etag[:-3] + '"'})

    assert (listed.status_code, weak.status_code, part.status_code) == (304, 304, 200)
