"""The bot's own words in Chinese and English (the team file's `language`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

Lang = Literal["zh", "en"]

# Not words but the way each language writes: a time in status, prompts and reminders; a list; a section's
# name set apart; days in a row.
STATUS_TIME: dict[Lang, str] = {"zh": "%m-%d %H:%M", "en": "%a %m-%d %H:%M"}
_LIST_SEP: dict[Lang, str] = {"zh": "、", "en": ", "}
_DAYS_SEP: dict[Lang, str] = {"zh": "；", "en": "; "}


def join(lang: Lang, items: Sequence[str]) -> str:
    """A list as the team's language writes one: `a、b` or `a, b`."""
    return _LIST_SEP[lang].join(items)


def join_days(lang: Lang, items: Sequence[str]) -> str:
    """Spans of days one after another: `a；b` or `a; b`."""
    return _DAYS_SEP[lang].join(items)


def bracket(lang: Lang, title: str) -> str:
    """A section's title set apart in running text: `【标题】` or `[Title]`."""
    return f"【{title}】" if lang == "zh" else f"[{title}]"


def with_owners(lang: Lang, title: str, owners: str) -> str:
    """A section and who owns it: `【标题】(王芳)` or `[Title] (Ann)`."""
    return f"{bracket(lang, title)}({owners})" if lang == "zh" else f"{bracket(lang, title)} ({owners})"


MESSAGES: dict[str, dict[Lang, str]] = {
    "empty": {
        "zh": "没有收到文字内容哦。请直接把本期进展写在消息里（文件和图片暂不支持）。",
        "en": "I got no text. Please write your update in the message itself (files and images aren't read).",
    },
    "too_long": {
        "zh": "这条消息太长了（{n} 字，上限 {limit} 字），请拆成几条发送。",
        "en": "That message is too long ({n} characters, limit {limit}); please send it in parts.",
    },
    "not_owner": {
        "zh": "你目前不负责周报的任何部分，所以这条消息没有记录。输入 /weekly help 查看用法。",
        "en": "You don't own any section of a weekly report, so this wasn't recorded. Try /weekly help.",
    },
    "unknown_member": {
        "zh": "我还不认识你：请让管理员在团队配置文件里加上你的账号。",
        "en": "I don't know you yet: ask an admin to add your account to the team file.",
    },
    "no_cycle": {
        "zh": "{team} 还没有开始的周期（第一期在 {opens} 开始）。",
        "en": "{team}: no cycle has opened yet (the first opens {opens})",
    },
    "recorded": {
        "zh": "已记录到【{section}】（{cycle}）：{preview}",
        "en": "Recorded for [{section}] ({cycle}): {preview}",
    },
    "recorded_late": {
        "zh": "已记录到【{section}】（{cycle}，截止时间已过，标记为迟交）：{preview}",
        "en": "Recorded for [{section}] ({cycle}, after the deadline, marked late): {preview}",
    },
    "choose_section": {
        "zh": "已保存。这条更新属于哪个部分？",
        "en": "Saved. Which section is this update for?",
    },
    "edited": {"zh": "已更新【{section}】的这条内容：{preview}", "en": "Updated in [{section}]: {preview}"},
    "deleted": {"zh": "已从【{section}】删除这条内容。", "en": "Removed from [{section}]."},
    "no_section_yet": {"zh": "待选择的部分", "en": "no section yet"},
    "status_head": {
        "zh": "{team} {cycle}  开始 {opens}  截止 {deadline}",
        "en": "{team} {cycle}  opens {opens}  deadline {deadline}",
    },
    "status_submitted": {"zh": "已提交", "en": "submitted"},
    "status_missing": {"zh": "未提交", "en": "missing"},
    "status_skipped": {"zh": "跳过", "en": "skipped"},
    "status_away": {"zh": "请假", "en": "away"},
    "status_late": {"zh": "，迟交", "en": ", late"},
    "status_owner_away": {"zh": "{name}（请假）", "en": "{name} (away)"},
    "status_still_missing": {"zh": "仍未提交：{names}", "en": "Still missing: {names}"},
    "skipped": {
        "zh": "好的，{cycle} 你负责的部分标记为跳过：{sections}。",
        "en": "OK, your sections are marked skipped for {cycle}: {sections}.",
    },
    "skipped_nothing": {
        "zh": "{cycle} 你负责的部分都已经有内容了，没有需要跳过的。",
        "en": "Every section of yours already has an update for {cycle}: nothing to skip.",
    },
    "draft_empty": {"zh": "{cycle} 你还没有提交内容。", "en": "You have no update for {cycle} yet."},
    "draft_head": {"zh": "{cycle} 你的草稿：", "en": "Your draft for {cycle}:"},
    "not_lead": {
        "zh": "只有 {team} 的负责人可以使用 /weekly {cmd}。",
        "en": "Only the leads of {team} can use /weekly {cmd}.",
    },
    "summary_wait": {
        "zh": "正在生成 {cycle} 的周报，稍后发给你。",
        "en": "Compiling the {cycle} report; it will arrive shortly.",
    },
    "reminded": {
        "zh": "已提醒 {n} 位尚未提交的负责人：{names}",
        "en": "Reminded {n} owner(s) who have not answered: {names}",
    },
    "nobody_to_remind": {"zh": "所有人都已提交或跳过，无需提醒。", "en": "Everyone has answered or skipped."},
    "published": {"zh": "周报已发布：{targets}。", "en": "The report was published: {targets}."},
    "already_published": {
        "zh": "这份周报已经发布过了（{targets}），不再重复发布。",
        "en": "This report was already published ({targets}); it is not posted again.",
    },
    "publish_failed": {
        "zh": "发布到 {targets} 失败了，稍后再按一次“发布”重试。",
        "en": "Publishing to {targets} failed; press Publish again later to retry.",
    },
    "publish_unreachable": {
        "zh": "没有发布到 {targets}：这个平台没有配置凭据。",
        "en": "Not published to {targets}: that platform has no credentials configured.",
    },
    "publish_changed": {
        "zh": "注意：你预览之后，负责人又修改了内容；发布的是你审阅过的版本。要发布最新内容，请重新预览。",
        "en": "Note: owners changed their text after your preview; what was published is the version you "
              "reviewed. Preview again to publish the latest.",
    },
    "publish_stale_button": {
        "zh": "这个发布按钮已过期，请用 /weekly summary 重新预览。",
        "en": "That Publish button is out of date: preview again with /weekly summary.",
    },
    "no_snapshot": {
        "zh": "{cycle} 还没有预览过：先用 /weekly summary 预览，再发布。",
        "en": "{cycle} has not been previewed: preview it with /weekly summary, then publish.",
    },
    "preview_head": {
        "zh": "{team} {cycle} 周报预览。请先核对收尾部分（当前：{state}）：",
        "en": "{team} {cycle} report preview. Check the closing sections first (current: {state}):",
    },
    "state_draft_llm": {"zh": "模型起草", "en": "drafted by the model"},
    "state_draft_offline": {"zh": "离线规则起草", "en": "drafted offline"},
    "state_edited": {"zh": "{name} 于 {at} 编辑", "en": "edited by {name} at {at}"},
    "state_imported": {"zh": "导入的历史", "en": "imported history"},
    "state_published": {"zh": "，已发布", "en": ", published"},
    "preview_older_edit": {
        "zh": "（{name} 于 {at} 的编辑仍保留为历史版本。）",
        "en": "({name}'s edit of {at} is kept as an earlier revision.)",
    },
    "preview_changed_since_edit": {
        "zh": "负责人在这次编辑之后又修改了内容；需要的话可以“重新生成”。",
        "en": "Owners changed their text after this edit; Regenerate if you want a new draft.",
    },
    "preview_flag": {"zh": "⚠ 数字 {numbers} 在所列来源中找不到", "en": "⚠ {numbers} not found in its sources"},
    "preview_tail": {
        "zh": "完整周报见附件（{lines} 行）。编辑、重新生成或发布：",
        "en": "The whole report is attached ({lines} lines). Edit, regenerate or publish:",
    },
    "btn_edit": {"zh": "编辑", "en": "Edit"},
    "btn_regenerate": {"zh": "重新生成", "en": "Regenerate"},
    "btn_publish": {"zh": "发布", "en": "Publish"},
    "btn_preview_again": {"zh": "重新预览", "en": "Preview again"},
    "form_title": {"zh": "编辑收尾部分", "en": "Edit the closing sections"},
    "form_submit": {"zh": "保存", "en": "Save"},
    "form_hint": {
        "zh": "每行一条，以（来源：标题、…）结尾。",
        "en": "One item per line, ending with (sources: Title, …).",
    },
    "form_empty": {"zh": "两个部分不能都为空。", "en": "Both sections cannot be empty."},
    "edit_intro": {
        "zh": "{cycle}：编辑收获与反思、下周工作及目标，每行一条，以（来源：标题、…）结尾。",
        "en": "{cycle}: edit the lessons and next week's goals, one item per line ending with (sources: Title, …).",
    },
    "form_console": {
        "zh": "（在下面逐行写，保留两个标题行；单独一行“.”保存，/cancel 放弃。当前内容：）",
        "en": "(type it below, keeping the two heading lines; a line with only '.' saves it, /cancel drops it. Now:)",
    },
    "edit_saved": {"zh": "已保存你的修改。", "en": "Your edit is saved."},
    "bad_cycle": {
        "zh": "“{label}”不是{team}的周期（周期的写法如 {example}）。",
        "en": "'{label}' is not a cycle of {team} (cycles look like {example}).",
    },
    "bad_arg": {
        "zh": "“{word}”既不是团队也不是周期（周期的写法如 2024-W40）。",
        "en": "'{word}' is neither a team nor a cycle (cycles look like 2024-W40).",
    },
    "no_publish": {
        "zh": "团队配置里没有设置发布频道（publish）。",
        "en": "The team file sets no channel to publish to (publish).",
    },
    "away_set": {
        "zh": "已记录你请假：{days}。",
        "en": "Noted: you are away {days}.",
    },
    "away_cycles": {
        "zh": "截止日在这期间的 {cycles} 不会提醒你，也不会算作未提交。",
        "en": " You won't be prompted or reminded for {cycles}, nor counted missing.",
    },
    "away_none": {"zh": "你没有登记接下来的请假。", "en": "You have no days away coming up."},
    "away_list": {"zh": "你登记的请假：{days}", "en": "Your days away: {days}"},
    "away_off": {
        "zh": "已取消你在聊天里登记的 {n} 段请假（今天起）。",
        "en": "Cancelled {n} period(s) away you set in chat (from today on).",
    },
    "away_file_kept": {
        "zh": "团队配置文件里的请假仍然有效：{days}",
        "en": " The team file still lists you away: {days}",
    },
    "away_usage": {
        "zh": "用法：/weekly away 开始日期 [结束日期]，如 /weekly away 2024-10-01 2024-10-07；/weekly away off 取消。",
        "en": "Usage: /weekly away FROM [TO], like /weekly away 2024-10-01 2024-10-07; /weekly away off to cancel.",
    },
    "away_order": {"zh": "请假的结束日期早于开始日期。", "en": "The last day away is before the first."},
    "away_too_long": {"zh": "一次最多登记一年的请假。", "en": "Set at most a year away at once."},
    # -- cycle labels (spec §3) ------------------------------------------------------------------
    "label_malformed": {
        "zh": "“{label}”不是周期的写法（应如 2024-W40 或 2024-W38&W39）。",
        "en": "'{label}' is not a cycle label (like 2024-W40 or 2024-W38&W39)",
    },
    "label_no_week": {"zh": "{label}：{year} 年没有第 {week} 周。", "en": "'{label}': {year} has no week {week}"},
    "label_order": {"zh": "{label}：最后一周早于第一周。", "en": "'{label}': its last week is not after its first"},
    "label_too_long": {"zh": "{label}：一个周期最多 {n} 周。", "en": "'{label}': a cycle spans at most {n} weeks"},
    "label_year": {"zh": "{label}：周期须在 {lo} 到 {hi} 年之间。", "en": "{label}: a cycle must lie between {lo} and {hi}"},
    "label_not_cycle_weekly": {
        "zh": "{label} 不是这个团队的周期（每周一期）；{week} 属于周期 {holder}。",
        "en": "{label} is not a cycle of this team (weekly cycles); {week} is in cycle {holder}",
    },
    "label_not_cycle_merged": {
        "zh": "{label} 不是这个团队的周期（每周一期，短周合并）；{week} 属于周期 {holder}。",
        "en": "{label} is not a cycle of this team (weekly cycles, short weeks merged); {week} is in cycle {holder}",
    },
    "label_not_cycle_n": {
        "zh": "{label} 不是这个团队的周期（从 {start} 起每 {n} 周一期）；{week} 属于周期 {holder}。",
        "en": "{label} is not a cycle of this team ({n}-week cycles from {start}); {week} is in cycle {holder}",
    },
    "label_before_first": {
        "zh": "{label} 早于这个团队的第一期 {first}。",
        "en": "{label} is before this team's first cycle, {first}",
    },
    "label_skipped": {
        "zh": "{label} 整周放假，没有工作日，不需要周报。",
        "en": "{label} is skipped: it has no workday (holidays), so no report is due",
    },
    "not_opened": {"zh": "{label} 还没有开始。", "en": "{label} has not opened yet"},
    "cycles_order": {"zh": "--to {hi} 早于 --from {lo}。", "en": "--to {hi} is before --from {lo}"},
    "cycles_too_many": {"zh": "一次最多列出二十年的周期。", "en": "ask for at most twenty years of cycles at once"},
    # -- answers ----------------------------------------------------------------------------------
    "unknown_section": {"zh": "没有“{key}”这个部分。", "en": "unknown section {key!r}"},
    "not_yours": {"zh": "这条内容不是你的，或者已经不存在了。", "en": "That update is not yours or no longer exists."},
    "button_stale": {"zh": "这个按钮已经过期了。", "en": "That button is out of date."},
    # -- import -----------------------------------------------------------------------------------
    "in_file": {"zh": "{path}：{error}", "en": "{path}: {error}"},
    "import_one_file": {
        "zh": "--cycle 只能对应一份周报：导入多个文件时请不要加 --cycle。",
        "en": "--cycle names the cycle of one report: import several files without it",
    },
    "import_no_cycle": {
        "zh": "{path}：标题里没有周期（如“# 2024-W40”），请加 --cycle。",
        "en": "{path}: no cycle in its title (like '# 2024-W40'): pass --cycle",
    },
    "import_same_cycle": {
        "zh": "{path}：{label} 也是 {other} 的周期，每个周期只导入一份周报。",
        "en": "{path}: {label} is also the cycle of {other}: import one report per cycle",
    },
    "import_overlap_stored": {
        "zh": "{path}：{label} 与已保存的周期 {other} 有重叠的周：请以 {other} 导入（--cycle {other}）或不导入它。",
        "en": "{path}: {label} shares a week with cycle {other}, already stored: "
              "import it as {other} (--cycle {other}) or leave it out",
    },
    "import_overlap_here": {
        "zh": "{path}：{label} 与本次导入的周期 {other} 有重叠的周：请以 {other} 导入（--cycle {other}）或不导入它。",
        "en": "{path}: {label} shares a week with cycle {other}, already in this import: "
              "import it as {other} (--cycle {other}) or leave it out",
    },
    "file_missing": {"zh": "{path}：文件不存在。", "en": "{path}: no such file"},
    "file_is_dir": {"zh": "{path}：这是目录，不是周报文件。", "en": "{path}: is a directory, not a report file"},
    "file_unreadable": {"zh": "{path}：无法读取（{why}）。", "en": "{path}: cannot read ({why})"},
    "file_not_regular": {
        "zh": "{path}：不是普通文件（管道、设备等无法作为周报导入）。",
        "en": "{path}: not a regular file (a pipe or a device cannot be imported as a report)",
    },
    "file_too_big": {
        "zh": "{path}：文件太大（{size} 字节，上限 {limit} 字节），不像一份周报。",
        "en": "{path}: too big for a report ({size} bytes, limit {limit})",
    },
    "file_empty": {"zh": "{path}：文件是空的。", "en": "{path}: the file is empty"},
    "file_binary": {"zh": "{path}：这是二进制文件，不是 Markdown 周报。", "en": "{path}: a binary file, not a Markdown report"},
    "file_not_utf8": {
        "zh": "{path}：不是 UTF-8 文本（请把周报存为 UTF-8 的 Markdown）。",
        "en": "{path}: not UTF-8 text (save the report as UTF-8 Markdown)",
    },
    "report_empty": {"zh": "周报是空的。", "en": "The report is empty."},
    "report_no_sections": {
        "zh": "没有找到周报的部分：应为“- 【标题】”或“## 【标题】”开头的段落。",
        "en": "No report section found: expected '- 【title】' or '## 【title】' blocks.",
    },
    "demo_data_missing": {
        "zh": "找不到演示数据（bot/demo_data）：请重新安装 weekly-bot。",
        "en": "the demo's data (bot/demo_data) is missing: reinstall weekly-bot",
    },
    "config": {"zh": "{message}", "en": "{message}"},
    "error": {
        "zh": "抱歉，处理时出错了，已记录日志。请稍后再试。",
        "en": "Sorry, something went wrong; it has been logged. Please try again shortly.",
    },
    "help": {
        "zh": (
            "直接给我发消息就是你本期的周报内容（可以发多条，编辑、删除都会同步）。\n"
            "负责多个部分时，以【标题】或部分的 key 开头，或在按钮里选择。\n"
            "/weekly show — 查看我的草稿\n"
            "/weekly skip — 本期跳过\n"
            "/weekly away 开始 [结束] — 请假（如 /weekly away 10-01 10-07）；/weekly away off 取消\n"
            "/weekly status [周期] — 提交情况（负责人）\n"
            "/weekly summary [周期] — 预览周报：编辑、重新生成、发布（负责人）\n"
            "/weekly edit — 编辑收获与反思、下周工作及目标（负责人）\n"
            "/weekly publish [周期] — 发布审阅过的周报（负责人）\n"
            "/weekly remind — 提醒未提交的人（负责人）\n"
            "/weekly web — 网页视图的登录链接：历史、提交情况、搜索（负责人）\n"
            "/weekly help — 本说明"
        ),
        "en": (
            "Any message you send me is your update for this cycle (several messages add up; edits and "
            "deletes follow).\nOwning several sections? Start with [Title] / 【标题】 or the section key, or pick "
            "a button.\n"
            "/weekly show — your draft\n"
            "/weekly skip — skip this cycle\n"
            "/weekly away FROM [TO] — days away (like /weekly away 10-01 10-07); /weekly away off to cancel\n"
            "/weekly status [cycle] — who has answered (leads)\n"
            "/weekly summary [cycle] — preview the report: edit, regenerate, publish (leads)\n"
            "/weekly edit — edit the lessons and next week's goals (leads)\n"
            "/weekly publish [cycle] — publish the reviewed report (leads)\n"
            "/weekly remind — remind those missing (leads)\n"
            "/weekly web — a sign-in link to the web view: history, participation, search (leads)\n"
            "/weekly help — this help"
        ),
    },
    "unknown_command": {
        "zh": "不认识的命令“{word}”。\n",
        "en": "Unknown command '{word}'.\n",
    },
    "prompt": {
        "zh": "{name}你好，{team} {cycle} 开始收集了。请回复【{section}】{period}的进展，截止 {deadline}。",
        "en": "Hi {name}, {team} {cycle} is open. Please reply with your update for [{section}] ({period}) "
              "by {deadline}.",
    },
    "period_1": {"zh": "本周", "en": "this week"},
    "period_2": {"zh": "这两周", "en": "these two weeks"},
    "period_n": {"zh": "这{n}周", "en": "these {n} weeks"},
    "several_sections": {
        "zh": "你负责多个部分：消息以【标题】开头，或发完后在按钮中选择。",
        "en": "You own several sections: start a message with [Title], or pick one from the buttons.",
    },
    "prompt_hint": {"zh": "建议包含：{hint}", "en": "Worth covering: {hint}"},
    "prompt_plan_1": {"zh": "上周计划：", "en": "Last week's plan:"},
    "prompt_plan_n": {"zh": "上期计划：", "en": "Last cycle's plan:"},
    "reminder": {
        "zh": "提醒：{team} {cycle} 将在 {deadline} 截止，你负责的【{sections}】还没有提交。直接回复即可，或 /weekly skip 跳过。",
        "en": "Reminder: {team} {cycle} closes {deadline}; [{sections}] has no update from you yet. "
              "Just reply, or /weekly skip.",
    },
    "escalation": {
        "zh": "{team} {cycle} 已到截止时间，仍未提交：{missing}",
        "en": "{team} {cycle} reached its deadline; still missing: {missing}",
    },
    "escalation_none": {
        "zh": "{team} {cycle} 已到截止时间，全部已提交或跳过。",
        "en": "{team} {cycle} reached its deadline; every section has answered or skipped.",
    },
}


# -- the web view (issue 14): its pages' words, and the chat command that signs a lead in -------------------
MESSAGES.update({
    "web_link": {
        "zh": "网页视图的登录链接（10 分钟内有效，只能使用一次）：\n{url}",
        "en": "Your sign-in link to the web view (valid 10 minutes, works once):\n{url}",
    },
    "web_not_lead": {
        "zh": "只有周报的负责人可以打开网页视图（/weekly web）。",
        "en": "Only a report's leads can open the web view (/weekly web).",
    },
    "web_no_cycle": {"zh": "“{label}”不是这个团队已有的周期。", "en": "'{label}' is not one of this team's cycles."},
    "web_title": {"zh": "周报历史", "en": "Report history"},
    "web_cycles": {"zh": "周期", "en": "Cycles"},
    "web_participation": {"zh": "提交情况", "en": "Participation"},
    "web_search": {"zh": "搜索", "en": "Search"},
    "web_search_hint": {"zh": "搜索所有期的提交内容", "en": "Search every cycle's answers"},
    "web_search_results": {"zh": "“{q}”：{n} 条结果", "en": "'{q}': {n} result(s)"},
    "web_search_more": {"zh": "只显示最新的 {n} 条。", "en": "Only the newest {n} are shown."},
    "web_team": {"zh": "团队", "en": "Team"},
    "web_signout": {"zh": "退出登录", "en": "Sign out"},
    "web_signed_out": {"zh": "已退出登录。", "en": "You are signed out."},
    "web_need_link": {
        "zh": "需要登录：请在聊天中给机器人发送 /weekly web，打开它回复的链接。",
        "en": "Sign-in needed: send /weekly web to the bot in chat and open the link it replies with.",
    },
    "web_link_bad": {
        "zh": "这个登录链接已失效（只能使用一次，10 分钟内有效）。请再发送 /weekly web 获取新链接。",
        "en": "This sign-in link no longer works (it works once, for 10 minutes). Send /weekly web for a new one.",
    },
    "web_forbidden": {"zh": "你不是这个团队的负责人。", "en": "You are not a lead of this team."},
    "web_bad_form": {"zh": "表单已过期，请返回重试。", "en": "That form is out of date; go back and try again."},
    "web_not_found": {"zh": "没有这个页面。", "en": "No such page."},
    "web_col_cycle": {"zh": "周期", "en": "Cycle"},
    "web_col_weeks": {"zh": "周数", "en": "Weeks"},
    "web_col_opens": {"zh": "开始", "en": "Opens"},
    "web_col_deadline": {"zh": "截止", "en": "Deadline"},
    "web_col_state": {"zh": "状态", "en": "State"},
    "web_col_answered": {"zh": "已提交部分", "en": "Sections answered"},
    "web_col_member": {"zh": "成员", "en": "Member"},
    "web_col_rate": {"zh": "提交率", "en": "Answered"},
    "web_col_on_time_rate": {"zh": "按时率", "en": "On time"},
    "web_col_section": {"zh": "部分", "en": "Section"},
    "web_col_owners": {"zh": "负责人", "en": "Owners"},
    "web_col_when": {"zh": "时间", "en": "When"},
    "web_col_text": {"zh": "内容", "en": "Text"},
    "web_state_open": {"zh": "进行中", "en": "open"},
    "web_state_closed": {"zh": "已截止", "en": "closed"},
    "web_state_imported": {"zh": "已导入", "en": "imported"},
    "web_state_upcoming": {"zh": "未开始", "en": "upcoming"},
    "web_merged": {"zh": "合并周期", "en": "merged"},
    "web_on_time": {"zh": "按时", "en": "on time"},
    "web_late": {"zh": "迟交", "en": "late"},
    "web_skipped": {"zh": "跳过", "en": "skipped"},
    "web_away": {"zh": "请假", "en": "away"},
    "web_missing": {"zh": "未提交", "en": "missing"},
    "web_pending": {"zh": "未到截止", "en": "not due yet"},
    "web_imported": {"zh": "导入（不知谁写）", "en": "imported (no authors)"},
    "web_submitted": {"zh": "已提交", "en": "submitted"},
    "web_deleted": {"zh": "已删除", "en": "deleted"},
    "web_report": {"zh": "周报", "en": "The report"},
    "web_download_md": {"zh": "下载 Markdown", "en": "Download Markdown"},
    "web_download_csv": {"zh": "下载 CSV", "en": "Download CSV"},
    "web_summaries": {"zh": "收获与反思、下周工作及目标：各版本", "en": "Closing sections: every version"},
    "web_summaries_none": {"zh": "还没有生成或导入过。", "en": "None drafted or imported yet."},
    "web_source_llm": {"zh": "大模型草稿", "en": "LLM draft"},
    "web_source_offline": {"zh": "离线草稿", "en": "offline draft"},
    "web_source_imported": {"zh": "导入", "en": "imported"},
    "web_source_edited": {"zh": "负责人修改", "en": "edited by a lead"},
    "web_source_published": {"zh": "已发布", "en": "published"},
    "web_reflections": {"zh": "收获与反思", "en": "Lessons and reflections"},
    "web_next_week": {"zh": "下周工作及目标", "en": "Next week's work and goals"},
    "web_answers": {"zh": "各部分的提交记录", "en": "Each section's answers"},
    "web_no_answers": {"zh": "（没有提交）", "en": "(no answer)"},
    "web_unassigned": {"zh": "尚未选择部分的内容", "en": "Not yet given a section"},
    "web_revisions": {"zh": "{n} 个版本", "en": "{n} versions"},
    "web_action_create": {"zh": "提交", "en": "written"},
    "web_action_edit": {"zh": "修改", "en": "edited"},
    "web_action_delete": {"zh": "删除", "en": "deleted"},
    "web_action_assign": {"zh": "选择部分", "en": "section chosen"},
    "web_chart": {"zh": "每期提交情况（人数）", "en": "Each cycle's answers (members)"},
    "web_rates_note": {
        "zh": "提交率 = 按时与迟交 ÷（按时 + 迟交 + 未提交）；跳过、请假、未到截止和导入的周期不计。",
        "en": "Answered = (on time + late) ÷ (on time + late + missing); skipped, away, not-yet-due and imported "
              "cycles don't count.",
    },
    "web_import_member": {"zh": "（导入）", "en": "(import)"},
    "web_no_cycles": {"zh": "还没有周期。", "en": "No cycle yet."},
})


def period(lang: Lang, weeks: int) -> str:
    """How the bot names a cycle's span of time: 本周 / 这两周 / 这3周."""
    if weeks <= 2:
        return MESSAGES[f"period_{weeks}"][lang]
    return t(lang, "period_n", n=weeks)


def t(lang: Lang, key: str, /, **kwargs: object) -> str:
    """The message `key` in `lang`, formatted."""
    return MESSAGES[key][lang].format(**kwargs)
