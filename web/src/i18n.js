// Chinese / English UI text; the choice is kept in localStorage.
const T = {
  login: ["登录", "Log in"], username: ["用户名", "User name"], password: ["密码", "Password"],
  totp: ["动态验证码 (TOTP)", "One-time code (TOTP)"], logout: ["退出", "Log out"],
  tasks: ["任务", "Tasks"], admin: ["项目管理", "Projects"], open: ["打开", "Open"],
  kind: ["类型", "Kind"], status: ["状态", "Status"], case: ["病例", "Case"], progress: ["进度", "Progress"],
  project: ["项目", "Project"], projects: ["项目", "Projects"], distribute: ["分发任务", "Distribute"],
  freeze: ["冻结", "Freeze"], export: ["导出", "Export"], frozen: ["已冻结", "frozen"],
  create: ["新建项目", "Create project"], name: ["名称", "Name"], readers: ["读者数 K", "Readers K"],
  labelmap: ["标签映射 (值=编码)", "Label map (value=code)"], goal: ["任务目标", "Goal"],
  import: ["导入病例", "Import case"], casekey: ["病例号", "Case key"], image: ["NIfTI 图像", "NIfTI image"],
  report: ["报告", "Report"], fields: ["临床字段", "Clinical fields"], noTasks: ["没有任务", "No tasks"],
  brush: ["画笔", "Brush"], eraser: ["橡皮", "Eraser"], fill: ["填充", "Fill"], growcut: ["Grow-cut", "Grow-cut"],
  interp: ["层间插值", "Interpolate"], undo: ["撤销", "Undo"], redo: ["重做", "Redo"],
  box: ["矩形框", "Box"], point: ["点", "Point"], polygon: ["多边形", "Polygon"], navigate: ["浏览", "Navigate"],
  window: ["窗宽窗位", "Window/level"], center: ["窗位", "Level"], width: ["窗宽", "Width"],
  labels: ["标签", "Labels"], objects: ["矢量对象", "Vector objects"], attributes: ["属性", "Attributes"],
  submit: ["提交", "Submit"], saved: ["已保存", "saved"], saving: ["保存中…", "saving…"],
  unsaved: ["未保存", "unsaved"], conflict: ["冲突：草稿已被他处修改 (409)。请重新加载后继续。",
    "Conflict: the draft was changed elsewhere (409). Reload to continue."],
  reload: ["重新加载", "Reload"], loading: ["图像加载中…", "loading the image…"], link: ["关联所选文本 → 所选发现", "Link selected text → selected finding"],
  spans: ["文本片段", "Text spans"], selectText: ["先在报告中选择文本", "Select text in the report first"],
  qc: ["一级质控", "Level-1 QC"], noFindings: ["无质控发现", "No QC findings"], submitted: ["已提交", "Submitted"],
  review: ["审核", "Review"], accept: ["通过", "Accept"], reject: ["退回", "Reject"], reason: ["理由", "Reason"],
  reasonNeeded: ["退回必须写明理由", "A rejection needs a written reason"], sideBySide: ["并排", "Side by side"],
  overlay: ["叠加", "Overlaid"], dice: ["Dice", "Dice"], hd95: ["HD95 (mm)", "HD95 (mm)"],
  arbitrate: ["仲裁", "Arbitration"], useMask: ["采用此读者的掩膜为最终结果", "Use this reader's mask as final"],
  reader: ["读者", "Reader"], days90: ["与影像相隔 >90 天", "> 90 days from the image"],
  outOfRange: ["超出范围", "out of range"], required: ["必填", "required"], shortcuts: ["快捷键", "Shortcuts"],
  sliceMode: ["大容积按轴位逐层显示（绘制仍在原始网格上逐体素）", "Large volume: shown one axial slice at a time (drawing stays voxel-exact on the original grid)"],
  overviewTag: ["概览（降采样）", "overview, downsampled"], addSeries: ["添加序列", "Add series"],
  seriesKey: ["序列号", "Series key"],
  series: ["序列", "Series"], reference: ["标注序列", "Annotated series"], overlap: ["覆盖", "overlap"],
  regFailed: ["配准失败，未显示此序列", "Registration failed, series not shown"], zoom: ["缩放", "Zoom"], verified: ["已校验", "verified"], users: ["用户", "Users"],
};
let lang = localStorage.getItem("aimd.lang") || "zh";
export const t = (key) => (T[key] ? T[key][lang === "zh" ? 0 : 1] : key);
export const getLang = () => lang;
export function setLang(l) { lang = l; localStorage.setItem("aimd.lang", l); document.documentElement.lang = l; }
