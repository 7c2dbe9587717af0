// Performance probe of the web client against a running Deck (started here
// like the browser tests): JavaScript shipped for the first screen (gzipped),
// time to the first post visible on a cold load, long tasks over 50 ms during
// a busy stream, and the page's memory afterwards. Prints JSON.
//
//   node e2e/perf.mjs [--seconds 60] [--columns 10] [--rate 200]
// DECK_URL=http://127.0.0.1:8080 uses a server that is already running instead.

import { gzipSync } from 'node:zlib';
import { launchBrowser, startServer } from './harness.mjs';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const seconds = option('seconds', 60);
const nColumns = option('columns', 10);
const rate = option('rate', 200);
// `--from S`: start measuring S seconds after the server started, e.g. `--from 50` to take in
// the demo's comeback burst (10x the rate for 30 s, 60 s after the start).
const from = option('from', 0);
// `--breakdown`: also trace what ran inside each task (devtools.timeline), to name the five
// longest, and print the run's main-thread time by kind, what ran inside the animation frames,
// and the cards drawn per second (and per column); that tracing slows the page, so its task
// figures are not comparable to a plain run.
const breakdown = args.includes('--breakdown');
// `--profile`: sample the page's JavaScript and print the functions with the most self time.
const profile = args.includes('--profile');

// `--web-dir DIR`: serve the client built there (e.g. `npx vite build --minify false --outDir DIR`,
// so that `--profile` names the functions) instead of the one the binary embeds.
// `--no-images`: refuse every image request, to tell the cost of pictures from the cost of cards.
const noImages = args.includes('--no-images');
const webDir = args.includes('--web-dir') ? args[args.indexOf('--web-dir') + 1] : null;
const server = process.env.DECK_URL
  ? { baseUrl: process.env.DECK_URL, stop: async () => {} }
  : await startServer(['--demo-rate', String(rate), ...(webDir ? ['--web-dir', webDir] : [])]);
const serverStarted = Date.now();
const browser = await launchBrowser();
try {
  const context = await browser.newContext({ viewport: { width: 1600, height: 1000 }, locale: 'en-US' });
  const page = await context.newPage();
  if (noImages) await page.route((url) => url.pathname.startsWith('/media/'), (route) => route.abort());
  const scripts = [];
  page.on('response', async (response) => {
    if (response.request().resourceType() === 'script') scripts.push(response.body().then((body) => gzipSync(body).length).catch(() => 0));
  });
  await page.addInitScript(() => {
    window.__longTasks = [];
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) window.__longTasks.push([Math.round(entry.duration), entry.startTime]);
    }).observe({ type: 'longtask', buffered: true });
  });
  const started = Date.now();
  await page.goto(server.baseUrl);
  await page.getByRole('feed', { name: /BTS/ }).locator('article').first().waitFor({ timeout: 30_000 });
  const firstPostMs = Date.now() - started;
  const jsGzipBytes = (await Promise.all(scripts)).reduce((a, b) => a + b, 0);

  // A busy deck: ten columns of common queries.
  const queries = ['BTS', '#BTS', 'lang:ko', 'lang:en', '방탄소년단', 'ARMY', '#ARMY', 'filter:media', '-filter:retweets', 'lang:ja'];
  for (const query of queries.slice(0, Math.max(0, nColumns - 2))) {
    await page.getByRole('searchbox').fill(query);
    await page.getByRole('searchbox').press('Enter');
    await page.getByRole('feed', { name: query, exact: true }).last().waitFor();
  }
  const waitMs = serverStarted + from * 1000 - Date.now();
  if (waitMs > 0) await page.waitForTimeout(waitMs);
  const cdp = await context.newCDPSession(page);
  await cdp.send('Performance.enable');
  const metrics = async () => Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
  // Tasks by thread CPU time as well as by wall time: on a shared, loaded machine a task's
  // wall time includes the time its thread waited for a core; `tdur` does not.
  const traceEvents = [];
  // What ran inside the tasks (script, style, layout, paint…), to say what a long one was.
  const innerEvents = [];
  cdp.on('Tracing.dataCollected', ({ value }) => {
    for (const event of value) {
      if (event.ph !== 'X' || event.dur === undefined) continue;
      if (event.tdur !== undefined && (event.name === 'RunTask' || event.name === 'ThreadControllerImpl::RunTask')) traceEvents.push(event);
      else if (event.cat.includes('devtools.timeline')) innerEvents.push(event);
    }
  });
  const traced = new Promise((resolveTrace) => cdp.once('Tracing.tracingComplete', resolveTrace));
  await cdp.send('Tracing.start', { categories: breakdown ? 'toplevel,devtools.timeline' : 'toplevel', transferMode: 'ReportEvents' });
  const before = await metrics();
  if (profile) {
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
    await cdp.send('Profiler.start');
  }
  const measuredFrom = await page.evaluate(() => {
    window.__longTasks = [];
    return performance.now();
  });
  if (breakdown) {
    // Cards drawn (articles put into the page) during the run.
    await page.evaluate(() => {
      window.__cardsDrawn = 0;
      window.__cardsByColumn = {};
      new MutationObserver((records) => {
        for (const record of records) for (const node of record.addedNodes) if (node.nodeName === 'ARTICLE') {
          window.__cardsDrawn++;
          const label = record.target.closest?.('[role=feed]')?.getAttribute('aria-label') ?? '?';
          window.__cardsByColumn[label] = (window.__cardsByColumn[label] ?? 0) + 1;
        }
      }).observe(document.body, { childList: true, subtree: true });
    });
  }
  await page.waitForTimeout(seconds * 1000);
  let hotFunctions;
  if (profile) {
    const { profile: samples } = await cdp.send('Profiler.stop');
    const selfUs = new Map();
    const byId = new Map(samples.nodes.map((node) => [node.id, node]));
    const counts = new Map();
    for (const id of samples.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
    const total = samples.samples.length;
    for (const [id, n] of counts) {
      const { callFrame } = byId.get(id);
      const name = `${callFrame.functionName || '(anonymous)'} ${callFrame.url.split('/').pop()}:${callFrame.lineNumber + 1}:${callFrame.columnNumber + 1}`;
      selfUs.set(name, (selfUs.get(name) ?? 0) + n);
    }
    hotFunctions = [...selfUs.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([name, n]) => `${((100 * n) / total).toFixed(1)}% ${name}`);
  }
  const longTaskEntries = await page.evaluate(() => window.__longTasks);
  const longTasks = longTaskEntries.map(([duration]) => duration);
  // When each long task started, in seconds into the run and since the server started (the demo's burst comes 60 s after that).
  const longTaskStarts = longTaskEntries.map(([, startTime]) => Math.round((startTime - measuredFrom) / 100) / 10);
  const runStartedAfterServerS = Math.round((started - serverStarted + measuredFrom) / 100) / 10;
  const cardsDrawnPerSecond = breakdown ? Math.round((await page.evaluate(() => window.__cardsDrawn)) / seconds) : undefined;
  const cardsByColumn = breakdown ? await page.evaluate(() => window.__cardsByColumn) : undefined;
  const after = await metrics();
  await cdp.send('Tracing.end');
  await traced;
  // The renderer's main thread is the one with the most task time.
  const byThread = new Map();
  for (const event of traceEvents) {
    const key = `${event.pid}:${event.tid}`;
    byThread.set(key, (byThread.get(key) ?? 0) + event.tdur);
  }
  const mainThread = [...byThread.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
  const mainTasks = traceEvents.filter((event) => `${event.pid}:${event.tid}` === mainThread);
  const cpuLong = mainTasks.filter((event) => event.tdur > 50_000).map((event) => Math.round(event.tdur / 1000));
  // What ran on the main thread, in time order (an enclosing event before the ones inside it).
  const mainEvents = innerEvents.filter((event) => `${event.pid}:${event.tid}` === mainThread).sort((a, b) => a.ts - b.ts || b.dur - a.dur);
  // The outermost of time-ordered events, so that nothing is counted twice.
  const outermost = (events) => {
    let coveredUntil = -1;
    return events.filter((event) => {
      if (event.ts < coveredUntil) return false;
      coveredUntil = event.ts + event.dur;
      return true;
    });
  };
  const within = (outer) => (event) => event.ts >= outer.ts && event.ts + event.dur <= outer.ts + outer.dur;
  // The five longest main-thread tasks (by wall time), each with the time of what ran in it
  // by kind: the outermost events only, so nothing is counted twice.
  const longest = [...mainTasks].sort((a, b) => b.dur - a.dur).slice(0, 5);
  const longestTasks = longest.map((task) => {
    const byKind = {};
    for (const event of outermost(mainEvents.filter(within(task)))) {
      const kind = event.args?.data?.type ? `${event.name}:${event.args.data.type}` : event.args?.data?.functionName ? `${event.name}:${event.args.data.functionName}` : event.name;
      byKind[kind] = Math.round(((byKind[kind] ?? 0) + event.dur / 1000) * 10) / 10;
    }
    return { wallMs: Math.round(task.dur / 1000), cpuMs: Math.round(task.tdur / 1000), byKind };
  });
  // With `--breakdown`, also the whole run's main-thread time by kind (outermost events only)
  // and the layout and style work inside the animation frames, in ms per second.
  const allKinds = {};
  let animationFrames;
  if (breakdown) {
    const add = (kind, event) => (allKinds[kind] = (allKinds[kind] ?? 0) + event.dur / 1000 / seconds);
    for (const event of outermost(mainEvents)) add(event.name, event);
    const frames = mainEvents.filter((event) => event.name === 'FireAnimationFrame');
    animationFrames = { count: frames.length, over16ms: frames.filter((frame) => frame.dur > 16_000).length };
    const forced = mainEvents.filter((event) => event.name === 'Layout' || event.name === 'UpdateLayoutTree' || event.name === 'ParseHTML');
    for (const frame of frames) for (const event of forced.filter(within(frame))) add(`FireAnimationFrame/${event.name}`, event);
    for (const kind of Object.keys(allKinds)) allKinds[kind] = Math.round(allKinds[kind] * 10) / 10;
  }
  const cpu = { tasksOver50msCpu: cpuLong.length, longestTaskCpuMs: Math.max(0, ...cpuLong), mainThreadCpuMsPerSecond: Math.round(mainTasks.reduce((sum, event) => sum + event.tdur, 0) / 1000 / seconds) };
  // Main-thread time spent per second of wall time, by kind (these inflate on a loaded machine, but compare builds fairly).
  const busy = (name) => Math.round(((after[name] - before[name]) / seconds) * 1000);
  await cdp.send('HeapProfiler.collectGarbage');
  const { usedSize } = await cdp.send('Runtime.getHeapUsage');
  const domNodes = await page.evaluate(() => document.getElementsByTagName('*').length);
  console.log(JSON.stringify({ jsGzipBytes, firstPostMs, seconds, columns: nColumns, longTasksOver50ms: longTasks.length, longestTaskMs: Math.max(0, ...longTasks), longTaskStarts, runStartedAfterServerS, ...cpu, busyMsPerSecond: { task: busy('TaskDuration'), script: busy('ScriptDuration'), layout: busy('LayoutDuration'), style: busy('RecalcStyleDuration') }, heapUsedBytes: usedSize, domNodes, ...(breakdown ? { cardsDrawnPerSecond, cardsByColumn, animationFrames, msPerSecondByKind: Object.fromEntries(Object.entries(allKinds).sort((a, b) => b[1] - a[1]).slice(0, 15)), longestTasks } : {}), ...(profile ? { hotFunctions } : {}) }, null, 2));
} finally {
  await browser.close();
  await server.stop();
}
