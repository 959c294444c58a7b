export function SettingsPage(_p: { info: any }) { return <section><h1>Settings</h1></section>; }
