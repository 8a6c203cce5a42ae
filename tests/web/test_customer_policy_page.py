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


def test_the_customer_menu_offers_what_each_person_may_use(bank, page):
    def menu(username):
        client = page(username)
        client.get("/lang/en")
        return client.get("/").get_data(as_text=True)
    hr = menu("hr_b1")
    assert 'id="nav-customers"' in hr and 'id="nav-import-customers"' in hr and 'id="nav-tiering"' in hr
    emp = menu("emp")          # a manager: their own customers and leads, nothing to manage
    assert 'id="nav-my-portfolio"' in emp and 'id="nav-leads"' in emp
    assert 'id="nav-import-customers"' not in emp and 'id="nav-tiering"' not in emp
    assert 'id="nav-portfolios"' not in emp
    engine.activate_policy(policy_mod.load_file("mobile_quzhou"), "mobile_quzhou")
    db.session.commit()
    assert 'id="nav-customers"' not in menu("hr_b1")      # a policy without customers: no menu
