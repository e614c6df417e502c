// SoccerPredict's page: plain JavaScript, no build step, no third-party code.
// It ships no secret: the person pastes an API key, kept in sessionStorage (this tab only) and
// sent as X-API-Key to the same routes any client calls. Every failure is said on the page.
"use strict";

(() => {
  const KEY = "soccerpredict.apiKey";
  const OUTCOMES = ["home", "draw", "away"];
  const SHORT = { home: "H", draw: "D", away: "A" };
  const EDGE = 0.05; // model − bookmaker beyond this is highlighted
  const FORECASTERS = [
    ["model", "This model"],
    ["pinnacle_closing", "Pinnacle closing (de-vigged)"],
    ["pre_closing_market", "Pre-closing market (de-vigged)"],
    ["elo_only", "Elo alone"],
    ["base_rates", "Base rates"],
  ];
  const METRICS = [["rps", "RPS"], ["log_loss", "Log-loss"], ["brier", "Brier"], ["ece", "ECE"],
                   ["accuracy", "Accuracy"]];
  const HIGHER_IS_BETTER = new Set(["accuracy"]);
  // the form's price groups: the API's field names, each `${group}_${name}` on the page
  const MARKET_FIELDS = {
    odds: OUTCOMES.map((o) => `odds_${o}`),
    ps: OUTCOMES.map((o) => `ps_${o}`),
    ou: ["ou_over", "ou_under"],
    ah: ["ah_line", "ah_home", "ah_away"],
  };

  const $ = (selector) => document.querySelector(selector);
  const state = { leagues: [], plotUrls: [] };

  class ApiError extends Error {
    constructor(kind, message, problem = null, status = 0, retryAfter = 0) {
      super(message);
      Object.assign(this, { kind, problem, status, retryAfter });
    }
  }

  // ------------------------------------------------------------------ the API
  const apiKey = () => sessionStorage.getItem(KEY) || "";

  async function api(path, { method = "GET", body, raw = false } = {}) {
    const headers = { "X-API-Key": apiKey() };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method, headers, cache: "no-store",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError("down", `The API at ${location.origin} is not answering: is the app ` +
                                 `running? (${err.message})`);
    }
    if (response.ok) return raw ? response : response.json();
    const problem = await response.json().catch(() => null);
    const status = response.status;
    if (status === 401) {
      throw new ApiError("key", "Wrong or revoked key: the API refused it. Paste a valid key.",
                         problem, status);
    }
    if (status === 429) {
      const wait = Number(response.headers.get("Retry-After")) || 10;
      throw new ApiError("rate", `Rate limit of this key reached: try again in ${wait} s.`,
                         problem, status, wait);
    }
    if (!problem && status >= 500) {
      throw new ApiError("down", `The API is not answering properly (HTTP ${status}): is the ` +
                                 "app running?", null, status);
    }
    throw new ApiError("http", problem && problem.detail ? problem.detail : `HTTP ${status}`,
                       problem, status);
  }

  function setStatus(text, tone = "") {
    const el = $("#status");
    el.textContent = text;
    el.className = `status ${tone}`;
  }

  // An error goes where it happened; a key or an outage is also said at the top.
  function report(err, where) {
    const text = err instanceof ApiError ? err.message : `Unexpected error: ${err.message}`;
    if (err instanceof ApiError && (err.kind === "key" || err.kind === "down")) {
      setStatus(text, "bad");
    }
    if (where) {
      where.textContent = text;
      where.classList.add("bad");
    }
  }

  function clearMessage(el, text = "") {
    el.textContent = text;
    el.classList.remove("bad");
  }

  // ------------------------------------------------------------------ small views
  const pct = (p) => `${(100 * p).toFixed(1)}%`;
  const signed = (d) => `${d >= 0 ? "+" : "−"}${Math.abs(100 * d).toFixed(1)}`;
  const when = (iso) => {
    const date = new Date(String(iso).replace(" ", "T"));
    return Number.isNaN(date.getTime()) ? String(iso)
      : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  };

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (name === "class") node.className = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value);
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  function bars(probs, extra = "") {
    const label = OUTCOMES.map((o) => `${o} ${pct(probs[o])}`).join(", ");
    const box = el("div", { class: `bars ${extra}`, role: "img", "aria-label": label });
    for (const outcome of OUTCOMES) {
      const part = el("span", { class: outcome, title: `${outcome} ${pct(probs[outcome])}` });
      part.style.width = `${100 * probs[outcome]}%`; // CSSOM: allowed by the page's CSP
      if (probs[outcome] >= 0.14) part.textContent = `${Math.round(100 * probs[outcome])}%`;
      box.append(part);
    }
    return box;
  }

  function diffs(model, market) {
    const box = el("div", { class: "diffs" });
    for (const outcome of OUTCOMES) {
      const d = model[outcome] - market[outcome];
      const tone = Math.abs(d) >= EDGE ? ` edge ${d > 0 ? "pos" : "neg"}` : "";
      box.append(el("span", {
        class: `diff${tone}`, dataset: { outcome, diff: String(d) },
        title: `${outcome}: model ${pct(model[outcome])}, bookmaker ${pct(market[outcome])}`,
        text: `${SHORT[outcome]} ${signed(d)}`,
      }));
    }
    return box;
  }

  const fairOdds = (odds) => OUTCOMES.map((o) => odds[o].toFixed(2)).join(" · ");

  // ------------------------------------------------------------------ leagues and teams
  function fillLeagues(teams) {
    state.leagues = teams.leagues;
    for (const select of [$("#fixtures-league"), $("#league")]) {
      const keep = select.id === "fixtures-league" ? [select.options[0]] : [];
      const previous = select.value;
      select.replaceChildren(...keep, ...teams.leagues.map(
        (lg) => el("option", { value: lg.league, text: `${lg.league} (${lg.teams.length} teams` +
          (lg.data_ends && lg.data_ends < teams.as_of ? `, data ends ${lg.data_ends})` : ")") })));
      if ([...select.options].some((o) => o.value === previous)) select.value = previous;
    }
    onLeagueChange();
  }

  function onLeagueChange() {
    const league = state.leagues.find((lg) => lg.league === $("#league").value);
    if (!league) return;
    $("#teams-list").replaceChildren(...league.teams.map((t) => el("option", { value: t })));
    const kickoff = $("#kickoff");
    kickoff.min = league.earliest_kickoff;
    kickoff.max = league.latest_kickoff;
    if (!kickoff.value || kickoff.value < kickoff.min || kickoff.value > kickoff.max) {
      kickoff.value = league.earliest_kickoff;
    }
  }

  // ------------------------------------------------------------------ fixtures
  async function loadFixtures() {
    const message = $("#fixtures-message");
    clearMessage(message, "Loading fixtures…");
    const league = $("#fixtures-league").value;
    try {
      const data = await api(`/fixtures${league ? `?league=${encodeURIComponent(league)}` : ""}`);
      $("#fixtures tbody").replaceChildren(...data.fixtures.map(fixtureRow));
      clearMessage(message, data.fixtures.length ? ""
        : "No upcoming fixtures in the batch predictions.");
    } catch (err) {
      report(err, message);
    }
  }

  function fixtureRow(f) {
    const market = f.market_probabilities;
    const tryIt = el("button", { type: "button", class: "link", text: "What if…",
                                 "aria-label": `What if: ${f.home_team} v ${f.away_team}` });
    tryIt.addEventListener("click", () => fillForm(f));
    return el("tr", { dataset: { matchId: f.match_id, league: f.league } },
      el("td", { "data-label": "Kickoff", title: `${f.kickoff_utc} (UTC)`, text: when(f.kickoff_utc) }),
      el("td", { "data-label": "Match", class: "match" },
         el("span", { class: "league-tag", text: f.league }), `${f.home_team} – ${f.away_team}`),
      el("td", { "data-label": "Model H / D / A" }, bars(f.probabilities)),
      el("td", { "data-label": "Fair odds", class: "odds-cell", text: fairOdds(f.fair_odds) }),
      el("td", { "data-label": "Bookmaker H / D / A" },
         market ? bars(market, "market") : el("span", { class: "none", text: "no odds yet" })),
      el("td", { "data-label": "Model − bookmaker (points)" },
         market ? diffs(f.probabilities, market) : el("span", { class: "none", text: "—" })),
      el("td", {}, tryIt));
  }

  function fillForm(f) {
    $("#league").value = f.league;
    onLeagueChange();
    $("#home_team").value = f.home_team;
    $("#away_team").value = f.away_team;
    $("#kickoff").value = String(f.kickoff_utc).slice(0, 10);
    for (const group of Object.values(MARKET_FIELDS)) {
      for (const id of group) $(`#${id}`).value = "";
    }
    $("#predict-section").scrollIntoView({ behavior: "smooth" });
    $("#home_team").focus({ preventScroll: true });
  }

  // ------------------------------------------------------------------ the what-if form
  function formBody() {
    const body = {
      league: $("#league").value, home_team: $("#home_team").value.trim(),
      away_team: $("#away_team").value.trim(), kickoff: $("#kickoff").value,
    };
    const missing = ["home_team", "away_team", "kickoff"].filter((k) => !body[k]);
    if (!body.league) missing.unshift("league");
    if (missing.length) throw new Error(`Fill in: ${missing.join(", ").replaceAll("_", " ")}.`);
    const odds = pricesOf("odds", "Give all three odds, or none.");
    const ps = pricesOf("ps", "Give all three Pinnacle prices, or none.");
    // with Pinnacle's too, the main set is the average's: the API's `books` (its `odds` would
    // have to agree with the set it de-vigs, which is then the average's)
    if (ps) body.books = odds ? { avg: odds, ps } : { ps };
    else if (odds) body.odds = odds;
    const totals = pricesOf("ou", "Give both over/under 2.5 prices, or none.");
    if (totals) body.over_under_25 = totals;
    const handicap = pricesOf("ah", "Give the Asian-handicap line and both its prices, or none.");
    if (handicap) body.asian_handicap = handicap;
    return body;
  }

  function pricesOf(group, incomplete) {
    const ids = MARKET_FIELDS[group];
    const values = ids.map((id) => $(`#${id}`).value.trim());
    if (values.every((v) => v === "")) return null;
    if (values.some((v) => v === "")) throw new Error(incomplete);
    return Object.fromEntries(ids.map((id, i) => [id.slice(group.length + 1), Number(values[i])]));
  }

  function showFormError(err) {
    const box = $("#form-error");
    const problem = err instanceof ApiError ? err.problem : null;
    const text = err instanceof ApiError ? err.message : err.message;
    box.replaceChildren(el("p", { text }));
    for (const id of ["home_team", "away_team", "kickoff", "league"]) {
      $(`#${id}`).removeAttribute("aria-invalid");
    }
    const field = problem && problem.field ? $(`#${CSS.escape(problem.field)}`) : null;
    if (field) field.setAttribute("aria-invalid", "true");
    if (problem && problem.suggestions && problem.suggestions.length && field) {
      const list = el("p", { class: "suggestions" }, "Did you mean: ");
      problem.suggestions.forEach((name, i) => {
        const pick = el("button", { type: "button", class: "link suggestion", text: name });
        pick.addEventListener("click", () => {
          field.value = name;
          field.removeAttribute("aria-invalid");
          box.hidden = true;
          field.focus();
        });
        list.append(i ? ", " : "", pick);
      });
      list.append("?");
      box.append(list);
    }
    box.hidden = false;
    if (err instanceof ApiError) report(err);
  }

  function predictionView(p, target, withTitle = true) {
    target.dataset.home = String(p.probabilities.home);
    target.dataset.draw = String(p.probabilities.draw);
    target.dataset.away = String(p.probabilities.away);
    target.dataset.modelVersion = p.model_version;
    const legend = el("ul", { class: "legend" }, ...OUTCOMES.map((outcome) => el("li", {},
      el("b", { text: outcome[0].toUpperCase() + outcome.slice(1) }),
      el("span", { class: "p", text: pct(p.probabilities[outcome]) }),
      el("span", { class: "meta", text: `fair odds ${p.fair_odds[outcome].toFixed(2)}` }))));
    const title = withTitle ? el("p", { class: "match" }, `${p.home_team} – ${p.away_team}`,
      el("span", { class: "meta", text: `  ${p.league}, ${p.kickoff}` })) : null;
    target.replaceChildren(...[title].filter(Boolean), bars(p.probabilities), legend,
      el("p", { class: "meta", text: `model v${p.model_version}` +
                                     (p.forecaster ? ` (${p.forecaster})` : "") + " · " +
                                     `${p.cached ? "from the cache" : "computed now"}` +
                                     (p.data_ends ? ` · ratings from results up to ${p.data_ends}` +
                                       ` (${p.data_age_days} days before kickoff)` : "") }));
  }

  async function predictNow(event) {
    event.preventDefault();
    const out = $("#prediction");
    $("#form-error").hidden = true;
    let body;
    try { body = formBody(); } catch (err) { showFormError(err); return; }
    const button = $("#predict-now");
    button.disabled = true;
    try {
      predictionView(await api("/predict", { method: "POST", body }), out);
      out.hidden = false;
    } catch (err) {
      out.hidden = true;
      showFormError(err);
    } finally {
      button.disabled = false;
    }
  }

  // ------------------------------------------------------------------ async jobs
  async function queue() {
    $("#form-error").hidden = true;
    let body;
    try { body = formBody(); } catch (err) { showFormError(err); return; }
    try {
      const accepted = await api("/predict/async", { method: "POST", body });
      const item = jobItem(body, accepted.job_id);
      $("#jobs").prepend(item);
      poll(item, accepted.job_id, 0);
    } catch (err) {
      showFormError(err);
    }
  }

  function jobItem(body, jobId) {
    return el("li", { dataset: { jobId, status: "pending", home: body.home_team, away: body.away_team } },
      el("div", { class: "job-head" },
         el("span", { class: "badge pending", text: "pending" }),
         el("span", { class: "match", text: `${body.home_team} – ${body.away_team}` }),
         el("span", { class: "meta", text: `${body.league}, ${body.kickoff} · job ${jobId.slice(0, 8)}` })),
      el("div", { class: "job-body" }));
  }

  function setJob(item, status, text) {
    item.dataset.status = status;
    const badge = item.querySelector(".badge");
    badge.className = `badge ${status}`;
    badge.textContent = text || status;
  }

  async function poll(item, jobId, attempt) {
    const again = (seconds) => setTimeout(() => poll(item, jobId, attempt + 1), seconds * 1000);
    let job;
    try {
      job = await api(`/predict/async/${encodeURIComponent(jobId)}`);
    } catch (err) {
      const body = item.querySelector(".job-body");
      body.textContent = err.message;
      if (err.kind === "rate") return again(err.retryAfter);
      if (err.kind === "down" && attempt < 20) return again(Math.min(2 ** attempt, 10));
      report(err);
      return setJob(item, "failed", err.kind === "down" ? "gave up" : "unknown");
    }
    if (job.status === "pending") return again(Math.min(0.25 * 2 ** attempt, 4));
    setJob(item, job.status);
    const body = item.querySelector(".job-body");
    if (job.status === "done") predictionView(job.result, body, false);
    else body.textContent = `Failed: ${job.reason || "no reason given"}`;
    return undefined;
  }

  // ------------------------------------------------------------------ the model card
  async function loadCard() {
    const message = $("#card-message");
    clearMessage(message, "Loading the model card…");
    let card;
    try {
      card = await api("/model/card");
    } catch (err) {
      report(err, message);
      return;
    }
    clearMessage(message);
    const m = card.model;
    const rows = [
      ["Model", `${m.name} v${m.version} (alias ${m.alias})`],
      ["Promoted", card.promoted_at ? when(card.promoted_at) : "not in the promotion history"],
      ["Why", card.promotion_reasons.join("; ") || "—"],
      ["Registered", when(m.registered_at)],
      ["Trained on", trainedOn(m.trained_on || {})],
      ["Features", `${(m.feature_contract.columns || []).length} columns, schema ` +
                   `${m.feature_contract.schema_version ?? "?"}`],
    ];
    const refused = Object.entries(m.refused_versions || {});
    if (refused.length) rows.push(["Refused", refused.map(([v, why]) => `v${v}: ${why}`).join("; ")]);
    $("#card").replaceChildren(...rows.flatMap(([dt, dd]) => [
      el("dt", { text: dt }), el("dd", { dataset: { field: dt.toLowerCase() }, text: dd })]));
    metricsTable(m.test_metrics);
    driftView(card);
    await Promise.all(Object.entries(card.plots).map(([name, url]) => loadPlot(name, url)));
  }

  // the seasons the answering predictor was fitted on (GET /model's trained_on)
  function trainedOn(t) {
    const train = t.train_seasons || [];
    if (!train.length) return "not recorded with this version";
    const span = train.length > 1 ? `${train[0]} to ${train[train.length - 1]}` : train[0];
    const validation = (t.validation_seasons || []).join(", ");
    return validation ? `${span}; validated on ${validation}` : span;
  }

  function metricsTable(metrics) {
    const present = FORECASTERS.filter(([k]) => metrics[k]);
    const cols = METRICS.filter(([k]) => present.some(([f]) => metrics[f][k] !== undefined));
    const best = {};
    for (const [k] of cols) {
      const values = present.map(([f]) => metrics[f][k]).filter((v) => v !== undefined);
      best[k] = HIGHER_IS_BETTER.has(k) ? Math.max(...values) : Math.min(...values);
    }
    $("#metrics thead").replaceChildren(el("tr", {}, el("th", { scope: "col", text: "Forecaster" }),
      ...cols.map(([k, label]) => el("th", { scope: "col", class: "num", dataset: { metric: k },
                                             text: label }))));
    $("#metrics tbody").replaceChildren(...present.map(([f, label]) => el("tr",
      { class: f === "model" ? "ours" : "", dataset: { forecaster: f } },
      el("th", { scope: "row", text: label }),
      ...cols.map(([k]) => {
        const v = metrics[f][k];
        return el("td", { class: `num${v === best[k] ? " best" : ""}`, dataset: { metric: k },
                          text: v === undefined ? "—" : v.toFixed(4) });
      }))));
    const n = metrics.model && metrics.model.n;
    $("#metrics-n").textContent = n ? `${Math.round(n)} matches` : "matches";
  }

  function driftView(card) {
    const box = $("#drift");
    const d = card.drift;
    if (!d) {
      box.className = "drift unknown";
      box.textContent = `Drift: unknown (${card.drift_error})`;
      return;
    }
    const of = d.n_columns ? `/${d.n_columns}` : "";
    const columns = d.drifted_columns.length ? `: ${d.drifted_columns.join(", ")}` : "";
    box.className = `drift ${d.drifted ? "bad" : "ok"}`;
    box.textContent = `${d.drifted ? "Drift detected" : "No drift"}: ` +
      `${d.drifted_columns.length}${of} features drifted (share ${d.drift_share.toFixed(2)}` +
      `${d.drift_share_threshold != null ? `, alarm at ${d.drift_share_threshold}` : ""})` +
      `${columns}. Report of ${d.generated_at ? when(d.generated_at) : "unknown date"}` +
      `${d.as_of ? `, data as of ${d.as_of}` : ""}.`;
  }

  async function loadPlot(name, url) {
    const img = $(`#plot-${CSS.escape(name)}`);
    if (!img) return;
    const caption = img.parentElement.querySelector("figcaption");
    try {
      const blob = await (await api(url, { raw: true })).blob();
      const objectUrl = URL.createObjectURL(blob);
      state.plotUrls.push(objectUrl);
      img.src = objectUrl;
    } catch (err) {
      img.removeAttribute("src");
      caption.textContent = `${caption.textContent.split(":")[0]}: not available (${err.message})`;
    }
  }

  // ------------------------------------------------------------------ the key and start-up
  async function loadAll() {
    setStatus("Checking the key…");
    let teams;
    try {
      teams = await api("/teams");
    } catch (err) {
      report(err);
      if (!(err instanceof ApiError) || !["key", "down"].includes(err.kind)) {
        setStatus(err.message, "bad");
      }
      return;
    }
    setStatus(`Key accepted. Team state as of ${teams.as_of}.`, "ok");
    fillLeagues(teams);
    await Promise.all([loadFixtures(), loadCard()]);
  }

  function forget() {
    sessionStorage.removeItem(KEY);
    state.plotUrls.forEach((u) => URL.revokeObjectURL(u));
    state.plotUrls = [];
    $("#fixtures tbody").replaceChildren();
    $("#card").replaceChildren();
    $("#metrics thead").replaceChildren();
    $("#metrics tbody").replaceChildren();
    $("#drift").textContent = "";
    for (const img of document.querySelectorAll(".plots img")) img.removeAttribute("src");
    setStatus("Key forgotten. Paste an API key to see fixtures and predictions.");
  }

  function start() {
    $("#key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = $("#api-key").value.trim();
      if (!value) { setStatus("Paste a key first.", "bad"); return; }
      sessionStorage.setItem(KEY, value);
      $("#api-key").value = "";
      loadAll();
    });
    $("#forget-key").addEventListener("click", forget);
    $("#fixtures-league").addEventListener("change", loadFixtures);
    $("#league").addEventListener("change", onLeagueChange);
    $("#predict-form").addEventListener("submit", predictNow);
    $("#queue").addEventListener("click", queue);
    if (apiKey()) loadAll();
    else setStatus("Paste an API key to see fixtures and predictions.");
  }

  start();
})();
