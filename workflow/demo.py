"""A ready demo on the `bank_corporate` policy: an org tree, people holding every role, a year of scores,
and promotion cases in every state the policy reaches without rounds.

Everything goes through the same paths as real data: the org and the scores through the importers, the
cases through `engine.create_promotion` and `engine.fire`, so the audit chain verifies. Dates are taken
relative to today (the scores are for the last two calendar years), so the demo stays valid whenever it
is loaded. Loading it twice changes nothing.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import random
from dataclasses import dataclass

from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from . import clock, customer_import, customers, engine, importing, leads, portfolios, policy as policy_mod
from .errors import Refused
from .models import db, Case, OrgUnit, Person, Setting
from .models.customers import Customer

DEMO_KEY = "demo_loaded"
PASSWORD = "demo123"
POLICY = "bank_corporate"

# code, name, org level, parent
UNITS = [
    ("HQ", "总行", "hq", ""),
    ("EAST", "华东区域", "region", "HQ"),
    ("NORTH", "华北区域", "region", "HQ"),
    ("HZ", "杭州分行", "branch", "EAST"),
    ("NB", "宁波分行", "branch", "EAST"),
    ("BJ", "北京分行", "branch", "NORTH"),
    ("TJ", "天津分行", "branch", "NORTH"),
    ("HZ1", "杭州分行公司业务一部", "team", "HZ"),
    ("HZ2", "杭州分行公司业务二部", "team", "HZ"),
    ("NB1", "宁波分行公司业务一部", "team", "NB"),
    ("NB2", "宁波分行公司业务二部", "team", "NB"),
    ("BJ1", "北京分行公司业务一部", "team", "BJ"),
    ("BJ2", "北京分行公司业务二部", "team", "BJ"),
    ("TJ1", "天津分行公司业务一部", "team", "TJ"),
    ("TJ2", "天津分行公司业务二部", "team", "TJ"),   # no approver: its steps go up to the branch (vacancy)
]


@dataclass(frozen=True)
class P:
    """A demo person. `since`: months at the grade; `hired`: whole years of service (0: hired when the
    grade began); `perf`: the usual monthly performance score (None: staff, no scores); `skill`: the last
    skill test (a number or "pass")."""
    username: str
    name: str
    unit: str
    grade: str | None = None
    roles: tuple[str, ...] = ()
    since: int = 30
    hired: int = 8
    education: str = "bachelor"
    perf: int | None = None
    skill: int | str | None = None
    status: str = "active"


PEOPLE = [
    # 总行
    P("admin", "赵立新", "HQ", roles=("admin@HQ",), hired=15, education="master"),
    P("sunli", "孙丽", "HQ", roles=("hr@HQ",), hired=12, education="master"),
    P("zhouzhiyuan", "周志远", "HQ", "director-1", ("approver@HQ",), since=40, hired=22, education="phd",
      perf=92, skill="pass"),
    P("wuhaibo", "吴海波", "HQ", "general_manager-3", ("panel@HQ",), since=36, hired=18, education="master",
      perf=91, skill=93),
    P("zhengyaqin", "郑雅琴", "HQ", "general_manager-2", ("panel@HQ",), since=28, hired=16, education="master",
      perf=90, skill=90),
    P("wangzhigang", "王志刚", "HQ", "general_manager-1", ("panel@HQ",), since=26, hired=17, perf=89, skill=88),
    # 区域
    P("chenjianhua", "陈建华", "EAST", "general_manager-1", ("approver@EAST",), since=34, hired=19,
      education="master", perf=90, skill="pass"),
    P("linxiaomei", "林晓梅", "EAST", roles=("hr@EAST",), hired=11),
    P("huangwei", "黄伟", "EAST", "principal-3", ("panel@EAST",), since=30, hired=15, perf=89, skill=91),
    P("liuguoqiang", "刘国强", "NORTH", "general_manager-2", ("approver@NORTH",), since=38, hired=20,
      education="master", perf=91, skill="pass"),
    P("zhangjing", "张静", "NORTH", roles=("hr@NORTH",), hired=10),
    P("majun", "马军", "NORTH", "principal-2", ("panel@NORTH",), since=27, hired=14, perf=88, skill=87),
    # 分行
    P("xuming", "徐明", "HZ", "principal-2", ("approver@HZ",), since=32, hired=14, perf=89, skill=90),
    P("hexiaoyan", "何晓燕", "HZ", roles=("hr@HZ",), hired=9),
    P("gaoyun", "高云", "HZ", "principal-1", ("supervisor@HZ",), since=25, hired=13, perf=88, skill="pass"),
    P("luojia", "罗佳", "HZ", "senior-3", ("panel@HZ",), since=29, hired=11, perf=87, skill=86),
    P("songtao", "宋涛", "HZ", "senior-3", ("panel@HZ",), since=31, hired=12, perf=86, skill=89),
    P("guoqing", "郭庆", "NB", "principal-1", ("approver@NB",), since=33, hired=13, perf=88, skill=87),
    P("tangli", "唐莉", "NB", roles=("hr@NB",), hired=8),
    P("hanxu", "韩旭", "NB", "principal-1", ("supervisor@NB",), since=24, hired=12, perf=87, skill="pass"),
    P("fengyu", "冯雨", "NB", "senior-3", ("panel@NB",), since=28, hired=11, perf=86, skill=88),
    P("dengkai", "邓凯", "NB", "senior-2", ("panel@NB",), since=26, hired=10, perf=87, skill=85),
    P("caoyang", "曹阳", "BJ", "principal-3", ("approver@BJ",), since=35, hired=16, education="master",
      perf=90, skill=92),
    P("yuanjie", "袁洁", "BJ", roles=("hr@BJ",), hired=9),
    P("xiefeng", "谢峰", "BJ", "principal-3", ("supervisor@BJ",), since=30, hired=15, perf=89, skill="pass"),
    P("pengli", "彭丽", "BJ", "senior-3", ("panel@BJ",), since=27, hired=11, perf=88, skill=87),
    P("zengfan", "曾帆", "BJ", "senior-2", ("panel@BJ",), since=25, hired=10, perf=86, skill=86),
    P("sunhao", "孙浩", "BJ", "principal-1", since=20, hired=12, perf=90, skill=91),
    P("lvbin", "吕斌", "TJ", "principal-1", ("approver@TJ",), since=31, hired=13, perf=88, skill=86),
    P("sumin", "苏敏", "TJ", roles=("hr@TJ",), hired=7),
    P("jianghao", "蒋浩", "TJ", "principal-2", ("supervisor@TJ",), since=29, hired=14, perf=87, skill="pass"),
    P("caixin", "蔡欣", "TJ", "senior-3", ("panel@TJ",), since=28, hired=11, perf=86, skill=88),
    P("dingning", "丁宁", "TJ", "senior-2", ("panel@TJ",), since=24, hired=9, perf=87, skill=84),
    # 团队
    P("yelin", "叶林", "HZ1", "senior-2", ("supervisor@HZ1",), since=26, hired=10, perf=88, skill=87),
    P("panjie", "潘杰", "HZ1", "senior-1", ("approver@HZ1",), since=22, hired=9, perf=86, skill=85),
    P("liyang", "李扬", "HZ1", "manager-3", since=20, hired=6, perf=88, skill=84),
    P("wangfang", "王芳", "HZ1", "assistant-3", since=18, hired=4, education="college", perf=86, skill="pass"),
    P("chenchen", "陈晨", "HZ1", "manager-1", since=16, hired=5, perf=85, skill=80),
    P("dujuan", "杜娟", "HZ2", "senior-3", ("supervisor@HZ2",), since=30, hired=12, perf=89, skill=90),
    P("daiwei", "戴维", "HZ2", "senior-1", ("approver@HZ2",), since=21, hired=9, perf=86, skill=86),
    P("xiayu", "夏雨", "HZ2", "manager-2", since=17, hired=5, perf=87, skill=83),
    P("tianxin", "田欣", "HZ2", "manager-3", since=24, hired=7, perf=89, skill=88),
    P("zhonglei", "钟磊", "HZ2", "assistant-2", since=14, hired=3, education="college", perf=74, skill=71),
    P("xiaoqing", "肖青", "HZ2", "assistant-1", since=2, hired=0, status="probation"),
    P("renjie", "任杰", "NB1", "senior-2", ("supervisor@NB1",), since=27, hired=10, perf=87, skill=88),
    P("jiangshan", "姜珊", "NB1", "senior-1", ("approver@NB1",), since=20, hired=8, perf=86, skill=85),
    P("shilei", "石磊", "NB1", "manager-1", since=19, hired=5, perf=88, skill="pass"),
    P("fangyuan", "方圆", "NB1", "assistant-3", since=15, hired=3, education="college", perf=85, skill=79),
    P("yaoyao", "姚瑶", "NB2", "senior-1", ("supervisor@NB2",), since=23, hired=9, perf=87, skill=86),
    P("tanming", "谭明", "NB2", "senior-1", ("approver@NB2",), since=25, hired=10, perf=86, skill=84),
    P("liaokai", "廖凯", "NB2", "manager-2", since=18, hired=6, perf=85, skill=81),
    P("zoujing", "邹静", "NB2", "assistant-1", since=8, hired=1, education="college", perf=86, skill=78),
    P("xiongwei", "熊伟", "BJ1", "senior-3", ("supervisor@BJ1",), since=28, hired=11, perf=88, skill=87),
    P("jinxin", "金鑫", "BJ1", "senior-2", ("approver@BJ1",), since=24, hired=10, perf=87, skill=86),
    P("luyi", "陆怡", "BJ1", "manager-3", since=21, hired=6, perf=86, skill=85),
    P("qianlei", "钱磊", "BJ1", "assistant-3", since=13, hired=3, education="college", perf=93, skill=92),
    P("zhaomin", "赵敏", "BJ2", "senior-2", ("supervisor@BJ2",), since=26, hired=10, perf=88, skill="pass"),
    P("qinfeng", "秦峰", "BJ2", "senior-1", ("approver@BJ2",), since=22, hired=9, perf=86, skill=84),
    P("weiwei", "魏薇", "BJ2", "manager-2", since=19, hired=5, perf=87, skill=85),
    P("xuejing", "薛静", "BJ2", "senior-2", since=23, hired=8, perf=86, skill=86),
    P("yuhui", "余辉", "TJ1", "senior-2", ("supervisor@TJ1",), since=25, hired=9, perf=87, skill=85),
    P("dongming", "董明", "TJ1", "senior-1", ("approver@TJ1",), since=22, hired=8, perf=86, skill=84),
    P("yanli", "阎丽", "TJ1", "assistant-2", since=16, hired=3, education="highschool", perf=85, skill=52),
    P("kongyu", "孔宇", "TJ1", "manager-1", since=10, hired=4, perf=86, skill=82),
    P("shenyi", "沈毅", "TJ2", "senior-1", ("supervisor@TJ2",), since=21, hired=8, perf=87, skill=86),
    P("lujuan", "卢娟", "TJ2", "manager-3", since=22, hired=6, perf=85, skill=83),
    P("pengbo", "彭博", "TJ2", "assistant-3", since=17, hired=4, education="college", perf=87, skill="pass"),
]

# The logins worth trying first, with what to try (the rest log in with the same password).
HINTS = [
    ("admin", "maintain the org tree, people and roles; verify the audit chain"),
    ("sunli", "HQ HR: the pipeline of the whole bank; verify the audit chain"),
    ("panjie", "inbox: 王芳's qualification review, overdue — qualify or return it"),
    ("wangfang", "follow your own application (waiting for qualification)"),
    ("chenchen", "your application was returned: revise the statement and resubmit"),
    ("hexiaoyan", "approve 田欣's promotion to senior-1; follow 夏雨's panel"),
    ("songtao", "score 夏雨's case presentation (blind until you have scored)"),
    ("wuhaibo", "score 夏雨's case presentation from the HQ panel"),
    ("luojia", "has scored 夏雨: now sees the other scores"),
    ("dujuan", "direct supervisor of 夏雨 and 田欣 (evaluations given)"),
    ("caoyang", "exceptional (破格) case of 钱磊, one org level up: qualify it"),
    ("lvbin", "彭博's case came up from team TJ2, which has no approver (vacancy)"),
    ("liuguoqiang", "region approver: 孙浩's application for principal-2"),
    ("yuanjie", "Beijing HR: file a case on behalf of someone in the branch"),
    ("shilei", "promoted to manager-2: see the grade history"),
    ("liyang", "eligible: apply for senior-1"),
    ("zhonglei", "not eligible yet: see which rules fail"),
]


@dataclass(frozen=True)
class Login:
    username: str
    name: str
    roles: list[str]
    hint: str


@dataclass(frozen=True)
class DemoResult:
    created: bool
    password: str
    logins: list[Login]
    summary: str
    others: str


def is_loaded() -> bool:
    return db.session.get(Setting, DEMO_KEY) is not None


def load(today: dt.date | None = None) -> DemoResult:
    """Load the demo into an empty database and flush (the caller commits). If it is already loaded, change
    nothing. Refused when the database holds another org tree."""
    today = today or clock.today()
    created = False
    if not is_loaded():
        if db.session.scalar(select(func.count()).select_from(OrgUnit)):
            raise Refused("the database already holds an org tree; the demo needs an empty database "
                          "(point DATABASE_URL at a new one and run init-db first)")
        _load(today)
        db.session.add(Setting(key=DEMO_KEY, value=today.isoformat()))
        db.session.flush()
        created = True
    return DemoResult(created=created, password=PASSWORD, logins=logins(), summary=_summary(),
                      others=f"All {len(PEOPLE)} demo people log in with the same password; "
                             f"the admin pages list everyone with their roles.")


def logins() -> list[Login]:
    people = {p.username: p for p in db.session.scalars(
        select(Person).where(Person.username.in_([u for u, _ in HINTS])))}
    return [Login(u, people[u].name, people[u].role_strings(), hint) for u, hint in HINTS if u in people]


def _summary() -> str:
    count = lambda model: db.session.scalar(select(func.count()).select_from(model))  # noqa: E731
    states = db.session.execute(select(Case.state, func.count()).group_by(Case.state)
                                .order_by(Case.state)).all()
    return (f"{count(OrgUnit)} units, {count(Person)} people, {count(Case)} cases "
            f"({', '.join(f'{s} {n}' for s, n in states)}), {count(Customer)} customers")


# --- loading -----------------------------------------------------------------------------------------

def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _months_before(day: dt.date, months: int) -> dt.date:
    return clock.add_months(day.replace(day=1), -months)


def _load(today: dt.date) -> None:
    pol = policy_mod.load_file(POLICY)
    engine.activate_policy(pol, POLICY)
    units = _csv(["code", "name", "level", "parent_code"], [list(u) for u in UNITS])
    header = ["username", "name", "unit_code", "grade", "grade_since", "hired_on", "education", "status",
              "roles"]
    people = _csv(header, [
        [p.username, p.name, p.unit, p.grade or "",
         _months_before(today, p.since).isoformat() if p.grade else "",
         _months_before(today, 12 * p.hired + 6 if p.hired else p.since).isoformat(),
         p.education, p.status, ";".join(p.roles)] for p in PEOPLE])
    importing.import_org(units, people, policy=pol)
    # One hash for everyone: hashing a password is slow on purpose, and they all share it.
    shared = generate_password_hash(PASSWORD)
    for person in db.session.scalars(select(Person)):
        person.password_hash = shared
    importing.import_scores(_csv(["username", "period", "kind", "value"], _score_rows(today)), policy=pol)
    _cases(today)
    _customers(today)


def _score_rows(today: dt.date) -> list[list[str]]:
    """Monthly performance and a yearly skill test for the last two calendar years."""
    rows = []
    for p in PEOPLE:
        if p.perf is None:
            continue
        rng = random.Random(p.username)
        for year in (today.year - 2, today.year - 1):
            for month in range(1, 13):
                value = max(0, min(100, p.perf + rng.randint(-4, 4)))
                rows.append([p.username, f"{year}-{month:02d}", "performance", str(value)])
            last = year == today.year - 1
            if last or isinstance(p.skill, str):
                skill = p.skill
            else:   # the year before: around this year's result, and passed
                skill = max(60, int(p.skill) + rng.randint(-5, 5))
            rows.append([p.username, str(year), "skill_test", str(skill)])
    return rows


def _cases(today: dt.date) -> None:
    people = {p.username: p for p in db.session.scalars(select(Person))}

    def file(who: str, target: str, statement: str, filer: str | None = None, exceptional: bool = False,
             on: dt.date | None = None) -> Case:
        return engine.create_promotion(people[filer or who], people[who], target, statement,
                                       exceptional=exceptional, today=on or today)

    def act(case: Case, action: str, who: str, **data) -> Case:
        return engine.fire(case, action, people[who], data, today=today)

    # Effective: 石磊 manager-1 -> manager-2, through every step.
    case = file("shilei", "manager-2", "2025年新拓展对公客户12户，存款日均新增1.2亿元，申请晋升客户经理二档。")
    act(case, "qualify", "jiangshan")
    act(case, "assign_panel", "tangli", members=["fengyu", "dengkai", "huangwei"])
    for member, score in (("fengyu", 88), ("dengkai", 85), ("huangwei", 90)):
        act(case, "score", member, score=score)
    act(case, "supervisor_score", "renjie", score=90)
    act(case, "approve", "tangli")

    # HR approval: 田欣 manager-3 -> senior-1 (the branch qualifies a senior candidate).
    case = file("tianxin", "senior", "牵头完成两笔银团贷款，全年中间业务收入排名分行第一。")
    act(case, "qualify", "xuming")
    act(case, "assign_panel", "hexiaoyan", members=["luojia", "songtao", "huangwei"])
    for member, score in (("luojia", 86), ("songtao", 84), ("huangwei", 88)):
        act(case, "score", member, score=score)
    act(case, "supervisor_score", "dujuan", score=89)

    # Panel scoring, some scores in: 夏雨 manager-2 -> manager-3.
    case = file("xiayu", "manager-3", "负责战略客户综合服务方案，客户满意度评价优秀。")
    act(case, "qualify", "daiwei")
    act(case, "assign_panel", "hexiaoyan", members=["luojia", "songtao", "wuhaibo"])
    act(case, "score", "luojia", score=85)
    act(case, "supervisor_score", "dujuan", score=87)

    # Returned for more material: 陈晨 manager-1 -> manager-2.
    case = file("chenchen", "manager-2", "申请晋升客户经理二档。")
    act(case, "return", "panjie", comment="请补充2025年度重点客户拓展情况和授信业务明细后重新提交。")

    # Waiting for qualification, past its deadline: 王芳 assistant-3 -> manager-1, filed two weeks ago.
    file("wangfang", "manager", "助理客户经理三档满一年半，绩效连续优秀，申请晋升客户经理。",
         on=today - dt.timedelta(days=14))

    # Rejected at qualification: 廖凯 manager-2 -> manager-3.
    case = file("liaokai", "manager-3", "申请晋升客户经理三档。")
    act(case, "reject", "tanming", comment="年内出现两次贷后检查不到位问题，本年度暂不予晋升。")

    # Withdrawn by the applicant after qualification: 魏薇 manager-2 -> manager-3.
    case = file("weiwei", "manager-3", "申请晋升客户经理三档。")
    act(case, "qualify", "qinfeng")
    act(case, "withdraw", "weiwei", comment="个人原因，明年再申请。")

    # Exceptional (破格, skipping a tier), filed by HR: routed one org level up, to the branch.
    file("qianlei", "manager-2", "年度业绩位列全行前5%，独立营销落地重点项目三个，申请破格晋升。",
         filer="yuanjie", exceptional=True)

    # Team TJ2 has no approver: the qualification goes up to the branch (vacancy).
    file("pengbo", "manager", "申请晋升客户经理。")

    # A principal tier: qualified at the region.
    file("sunhao", "principal-2", "分管行业客户存款规模增长30%，申请晋升资深客户经理二档。")


# --- customers -----------------------------------------------------------------------------------------

CUSTOMERS_PER_TEAM = 50
TEAMS = [code for code, _, level, _ in UNITS if level == "team"]
CITIES = {"HZ": "杭州", "NB": "宁波", "BJ": "北京", "TJ": "天津"}
WORDS = ("华信", "远航", "金桥", "东方", "恒通", "新锐", "瑞丰", "博雅", "天成", "宏达", "安泰", "嘉禾", "永盛",
         "中和", "启明", "万通", "鼎盛", "明远", "卓越", "海纳", "同创", "汇智", "信达", "润泽", "光华")
# industry: (share, name endings)
INDUSTRIES = {
    "government": (6, ("市财政局", "区人民政府", "市税务局", "市教育局", "区卫生健康委员会")),
    "state_owned": (8, ("城建集团有限公司", "交通投资集团有限公司", "能源有限公司", "水务集团有限公司")),
    "finance": (8, ("证券营业部", "保险分公司", "融资租赁有限公司")),
    "manufacturing": (30, ("机械制造有限公司", "电子科技有限公司", "新材料股份有限公司", "汽车零部件有限公司")),
    "trade": (25, ("商贸有限公司", "进出口有限公司", "供应链管理有限公司")),
    "services": (18, ("物业服务有限公司", "酒店管理有限公司", "信息技术服务有限公司", "物流有限公司")),
    "other": (5, ("农业发展有限公司", "文化传媒有限公司")),
}


def _customer_rows(rng: random.Random) -> list[list[str]]:
    """CUSTOMERS_PER_TEAM customers per team, sized so that the value score spreads them over the tiers
    (about one in eight important, a third core, the rest ordinary)."""
    ids = list(INDUSTRIES)
    weights = [INDUSTRIES[i][0] for i in ids]
    rows = []
    for team in TEAMS:
        city = CITIES[team[:2]]
        for n in range(1, CUSTOMERS_PER_TEAM + 1):
            industry = rng.choices(ids, weights)[0]
            draw = rng.random()
            size = rng.uniform(0.74, 1.0) if draw < 0.12 else rng.uniform(0.44, 0.68) if draw < 0.45 \
                else rng.uniform(0.03, 0.36)
            vary = lambda lo, hi: size * rng.uniform(lo, hi)   # noqa: E731
            name = f"{city}{rng.choice(WORDS)}{rng.choice(INDUSTRIES[industry][1])}"
            rows.append([f"KH-{team}-{n:03d}", name, industry, team,
                         f"{100 * vary(0.8, 1.2):.1f}", f"{20 * vary(0.6, 1.3):.1f}",
                         str(int(2000 * vary(0.7, 1.3))), str(round(10 * vary(0.7, 1.2))),
                         str(min(100, int(55 + 45 * size + rng.uniform(-5, 5))))])
    return rows


def _customers(today: dt.date) -> None:
    """About 400 customers of the team units, loaded through the customers' import, tiered by their value
    score (set_tier, source "import", at last year's tiering) and most of them held by a manager of their
    team whom the policy's grade rule allows; some wait for a holder, two released by hand. Other areas extend the
    demo's customers from here (visits, leads)."""
    pol = engine.active_policy()[1]
    cpol = pol.customers
    rng = random.Random("customers")
    header = ["code", "name", "industry", "unit_code", *cpol.input_ids]
    customer_import.import_customers(_csv(header, _customer_rows(rng)), None, policy=pol)
    managers: dict[int, list[Person]] = {}
    for person in db.session.scalars(select(Person).where(Person.level.is_not(None))):
        if person.status == "active":
            managers.setdefault(person.unit_id, []).append(person)
    since = today - dt.timedelta(days=400)     # the last yearly tiering
    held = []
    for c in db.session.scalars(select(Customer).order_by(Customer.code)):
        # A quarter ago one customer in six had other figures (revenue up or down since): a new tiering run
        # proposes their changes, some of them into or out of 重要 for the branch's approver.
        then = dict(c.inputs)
        if rng.random() < 1 / 6:
            factor = rng.choice((0.45, 0.6, 1.6, 2.2))
            then = {k: v * factor if k in ("monthly_revenue", "it_revenue") else v for k, v in then.items()}
        tier, score, _ = cpol.classify(c.industry, then)
        customers.set_tier(c, tier, score=score, source="import", actor=None, effective_on=since)
        allowed = [m for m in managers.get(c.unit_id, []) if customers.holder_problem(pol, m, tier) is None]
        if allowed and rng.random() < 0.85:
            held_from = since + dt.timedelta(days=rng.randint(7, 300))
            customers.assign(c, rng.choice(allowed), None, pol=pol, today=held_from, source="import")
            held.append(c)
    for c in held[5:7]:
        customers.release(c, None, reason="manual", comment="客户经理调整分工，待重新包保。")
    db.session.flush()
    _visits(rng, held[7:], today)
    _leads(today)


VISIT_NOTES = ("了解年度融资需求", "介绍现金管理产品", "回访上季度业务办理情况", "走访企业财务负责人")


def _visits(rng: random.Random, held: list[Customer], today: dt.date) -> None:
    """Three held customers in four were visited by their manager in the last weeks; the others, held for
    longer than their tier's cadence, are on the overdue visits list."""
    for c in held:
        if rng.random() < 0.75:
            day = today - dt.timedelta(days=rng.randint(3, 60))
            method = rng.choice(("on_site", "on_site", "phone"))
            portfolios.record_visit(c.manager, c, day.isoformat(), method, rng.choice(VISIT_NOTES), today=today)
    db.session.flush()


LEADS = [  # owner (the lead is at their unit), class, days ago, title
    ("liyang", "A", 10, "杭州某科技公司 供应链融资"),
    ("liyang", "B", 4, "杭州某制造集团 代发工资"),
    ("tianxin", "C", 12, "杭州某商贸公司 结算账户"),
    ("xiayu", "A", 9, "杭州某物流公司 票据贴现"),
    ("fengyu", "B", 3, "宁波某外贸公司 国际结算"),
]


def _leads(today: dt.date) -> None:
    """A few sales leads in Hangzhou and Ningbo; the A leads opened over a week ago are overdue (as `tick`
    would flag them) and wait for the sales manager (高云, supervisor of the Hangzhou branch) to reassign."""
    people = {p.username: p for p in db.session.scalars(select(Person))}
    for owner, cls, ago, title in LEADS:
        leads.create(people[owner], title, people[owner].unit, people[owner], cls,
                     today=today - dt.timedelta(days=ago))
    db.session.flush()
    leads.flag_overdue(today)
