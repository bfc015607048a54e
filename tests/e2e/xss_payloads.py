"""Text that tries to run script or make the page fetch something.

Each payload, if it ever ran, would set `window.__xss` (or make a request
leave the page). They are sent as questions and rendered as answers by
tests/e2e/test_ui.py.
"""

PAYLOADS = [
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=1">',
    '<svg onload="window.__xss=1"></svg>',
    "<svg><script>window.__xss=1</script></svg>",
    '<iframe src="javascript:window.__xss=1"></iframe>',
    '<iframe srcdoc="<script>parent.__xss=1</script>"></iframe>',
    "[click me](javascript:window.__xss=1)",
    "[click](JaVaScRiPt:window.__xss=1)",
    "[spaced](  javascript:window.__xss=1 )",
    '<a href="javascript:window.__xss=1">link</a>',
    "![tracker](https://example.com/tracker.png)",
    "![x](x\" onerror=\"window.__xss=1)",
    '<body onload="window.__xss=1">',
    '<details open ontoggle="window.__xss=1"><summary>x</summary></details>',
    '<math><mtext><table><mglyph><style><img src=x onerror="window.__xss=1">',
    '<object data="javascript:window.__xss=1"></object>',
    '<embed src="javascript:window.__xss=1">',
    '<form action="javascript:window.__xss=1"><button>go</button></form>',
    '<input autofocus onfocus="window.__xss=1">',
    '<video><source onerror="window.__xss=1"></video>',
    "<style>@import 'https://example.com/x.css';</style>",
    '<link rel="stylesheet" href="https://example.com/x.css">',
    '<meta http-equiv="refresh" content="0;url=javascript:window.__xss=1">',
    "`<img src=x onerror=window.__xss=1>` in inline code",
    "```html\n<script>window.__xss=1</script>\n```",
    "[data](data:text/html;base64,PHNjcmlwdD53aW5kb3cuX194c3M9MTwvc2NyaXB0Pg==)",
    '<div style="background:url(https://example.com/x.png)">bg</div>',
    '<base href="https://example.com/">',
    "[ref]\n\n[ref]: javascript:window.__xss=1",
    '<noscript><p title="</noscript><img src=x onerror=window.__xss=1>">',
    '<a href="https://example.com" onclick="window.__xss=1">ok</a>',
    "| a | b |\n|---|---|\n| <img src=x onerror=window.__xss=1> | [x](javascript:window.__xss=1) |",
]

# Elements an answer may contain after rendering (Markdown's output plus the
# wrappers web/page/markdown.js adds); anything else means the sanitiser let it by.
ALLOWED = {
    "A", "BLOCKQUOTE", "BR", "CODE", "DEL", "EM", "H1", "H2", "H3", "H4", "H5", "H6", "HR", "LI", "OL", "P",
    "PRE", "SPAN", "STRONG", "TABLE", "TBODY", "TD", "TH", "THEAD", "TR", "UL", "DIV", "BUTTON",
}
