from storefront_recs import Recs


def test_app_fixture_migrates_and_accepts_events(client, recs: Recs) -> None:
    response = client.post("/recs/api/v1/events", json={"event_id": "abcdefgh-1", "type": "view", "item_id": "a"})
    assert response.status_code == 200
    assert response.json == {"accepted": 1, "duplicates": 0, "rejected": []}
