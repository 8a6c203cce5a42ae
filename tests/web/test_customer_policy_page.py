"""The active-policy page shows the customers section in the reader's language."""
from workflow import engine, policy as policy_mod
from workflow.models import db


def test_policy_page_shows_the_customer_tiers_and_rules(bank, page):
    client = page("admin")
    client.get("/lang/en")
    body = client.get("/admin/policy").get_data(as_text=True)
    assert "Customer tiers and service standards" in body and "Important" in body
    assert "Approver at the Branch, for changes into or out of Important and above" in body
    assert "County: 100–140 (NB, TJ)" in body and "A - about to sign: 7 days" in body
    client.get("/lang/zh_CN")
    body = client.get("/admin/policy").get_data(as_text=True)
    assert "重要客户" in body and "专属服务团队、高管定期拜访、个性化定制方案" in body
    assert "党政机关" in body                      # the floor's industries, by their names


def test_a_policy_without_customers_shows_no_section(bank, page):
    engine.activate_policy(policy_mod.load_file("mobile_quzhou"), "mobile_quzhou")
    db.session.commit()
    client = page("admin")
    client.get("/lang/en")
    body = client.get("/admin/policy").get_data(as_text=True)
    assert "Active policy" in body and "customer-tiers" not in body
